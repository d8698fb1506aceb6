"""One process per node: the pieces of a plan exchanging real messages over torch.distributed.

Ranks follow ``nodes.all``: 0 is the device, ``1..K`` the edge nodes (1 is the coordinator),
``K+1`` the cloud. Processes join one gloo group over TCP (``tcp://address:port``); each
message of :mod:`d3opt.executor.routing` (and each tile's slice and band on the edge LAN) is
sent as two point-to-point transfers: its length, then its bytes (:mod:`d3opt.executor.wire`).

:func:`run_distributed` starts the processes on this machine; :func:`serve` is what one
machine runs when the nodes are real machines (each prepares the same job from the same
model, plan and system; only ``address``/``port`` of the device, rank 0, must be known to all).
A process that dies, raises, or a peer that never answers ends the run with an
:class:`ExecutionError` within the timeout, never a hang.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import queue as queue_module
import socket
import time
import traceback
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from d3opt.errors import D3optError
from d3opt.executor.report import StageTime
from d3opt.executor.wire import header_bytes, pack, unpack
from d3opt.system import Tier


class ExecutionError(D3optError, RuntimeError):
    """A node process died, failed or did not answer in time."""


def _send(data: bytes, dst: int) -> None:
    dist.send(torch.tensor([len(data)], dtype=torch.int64), dst)
    dist.send(torch.frombuffer(bytearray(data), dtype=torch.uint8), dst)


def _recv(src: int) -> bytes:
    size = torch.zeros(1, dtype=torch.int64)
    dist.recv(size, src)
    data = torch.empty(int(size), dtype=torch.uint8)
    dist.recv(data, src)
    return data.numpy().tobytes()


class _Node:
    """What one rank does for one request, with its ledger of bytes and stage times."""

    def __init__(self, job, rank: int):
        self.job, self.rank = job, rank
        self.names = list(job.node_names)
        self.rank_of = {name: r for r, name in enumerate(self.names)}
        self.tier_rank = {Tier.DEVICE: 0, Tier.EDGE: 1, Tier.CLOUD: len(self.names) - 1}
        self.links: dict[str, list[int]] = {}
        self.stages: list[StageTime] = []
        self.env: dict[str, torch.Tensor] = {}
        self.start = time.perf_counter()

    def count(self, link: str, data: bytes) -> bytes:
        header = header_bytes(data)
        entry = self.links.setdefault(link, [0, 0, 0])
        entry[0] += len(data) - header
        entry[1] += header
        entry[2] += 1
        return data

    def timed(self, stage: str, fn, *args):
        begin = time.perf_counter()
        result = fn(*args)
        end = time.perf_counter()
        self.stages.append(StageTime(stage, self.names[self.rank], end - begin, end - self.start))
        return result

    def send(self, link: str) -> None:
        route = self.job.routes.get(link)
        if route is not None:
            data = pack([(n, d.name.lower(), self.env[n]) for n, d in route.entries])
            _send(self.count(link, data), self.tier_rank[route.dst])

    def receive(self, link: str) -> None:
        route = self.job.routes.get(link)
        if route is not None:
            for name, _, tensor in unpack(_recv(self.tier_rank[route.src])):
                self.env.setdefault(name, tensor)

    def compute(self, tier: Tier) -> None:
        for piece in self.job.split.pieces:
            if piece.tier != tier:
                continue
            if piece.name in self.job.tiled:
                (entry,) = piece.inputs
                outputs = (self.coordinate(piece.name, entry),)
            else:
                outputs = self.timed(piece.name, piece.module, *[self.env[n] for n in piece.inputs])
            self.env.update(zip(piece.outputs, outputs))

    def coordinate(self, piece: str, entry: str) -> torch.Tensor:
        run = self.job.tiled[piece]
        whole = self.env[entry]
        for node, tile in zip(run.nodes[1:], run.tiles[1:]):
            first, last = tile.in_rows
            data = pack([(entry, node, whole[:, :, first:last + 1])])
            _send(self.count("edge<->edge", data), self.rank_of[node])
        first, last = run.tiles[0].in_rows
        own = whole[:, :, first:last + 1].clone()
        bands = [self.timed(f"{piece}[0]", run.tiles[0].module, own)[0]]
        for node in run.nodes[1:]:
            bands.append(unpack(_recv(self.rank_of[node]))[0][2])
        return torch.cat(bands, dim=2)

    def work_tiles(self) -> None:
        me = self.names[self.rank]
        for piece, run in self.job.tiled.items():
            if me in run.nodes[1:]:
                index = run.nodes.index(me)
                (_, _, part), = unpack(_recv(1))
                (band,) = self.timed(f"{piece}[{index}]", run.tiles[index].module, part)
                _send(self.count("edge<->edge", pack([(piece, "coordinator", band)])), 1)

    def run(self, inputs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        cloud = len(self.names) - 1
        with torch.inference_mode():
            if self.rank == 0:
                self.env.update(zip(self.job.split.inputs, inputs))
                self.compute(Tier.DEVICE)
                self.send("device->edge")
                self.send("device->cloud")
                self.receive("edge->device")
                self.receive("cloud->device")
            elif self.rank == 1:
                self.receive("device->edge")
                self.compute(Tier.EDGE)
                self.send("edge->cloud")
                self.receive("cloud->edge")
                self.send("edge->device")
            elif self.rank == cloud:
                self.receive("edge->cloud")
                self.receive("device->cloud")
                self.compute(Tier.CLOUD)
                self.send("cloud->edge")
                self.send("cloud->device")
            else:
                self.work_tiles()
        return self.env


def node_job(job, rank: int):
    """The part of ``job`` rank ``rank`` needs: its own pieces and tile graphs only."""
    names = list(job.node_names)
    me = names[rank]
    tier = Tier.DEVICE if rank == 0 else Tier.CLOUD if rank == len(names) - 1 else Tier.EDGE
    coordinator = rank == 1
    pieces = tuple(
        p if (p.tier == tier and (tier != Tier.EDGE or coordinator)) else
        dataclasses.replace(p, module=None)
        for p in job.split.pieces
    )
    tiled = {
        name: dataclasses.replace(run, tiles=tuple(
            t if node == me else dataclasses.replace(t, module=None)
            for node, t in zip(run.nodes, run.tiles)))
        for name, run in job.tiled.items()
    }
    return dataclasses.replace(job, split=dataclasses.replace(job.split, pieces=pieces),
                               tiled=tiled)


def _join(rank: int, world: int, address: str, port: int, timeout: float) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://{address}:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=timeout))


def _serve_rank(job, rank: int, inputs, *, address: str, port: int, timeout: float) -> dict:
    world = len(job.node_names)
    _join(rank, world, address, port, timeout)
    try:
        dist.barrier()
        node = _Node(job, rank)
        env = node.run(inputs)
        total = time.perf_counter() - node.start
        outputs = None
        if rank == 0:
            outputs = pack([(n, "device", env[n]) for n in job.split.outputs])
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return {"links": node.links, "stages": node.stages, "total": total, "outputs": outputs}


def _worker(rank: int, job, inputs, address: str, port: int, timeout: float, threads: int,
            results) -> None:
    torch.set_num_threads(threads)
    try:
        stats = _serve_rank(job, rank, inputs, address=address, port=port, timeout=timeout)
        results.put((rank, "ok", stats))
    except BaseException:  # report anything to the launcher, then exit non-zero
        results.put((rank, "error", traceback.format_exc(limit=4)))
        raise SystemExit(1) from None


def serve(node: str, plan, model, example_input, *, nodes, network, address: str, port: int,
          graph=None, dtype: torch.dtype | None = None, timeout: float = 120.0) -> dict:
    """Run node ``node``'s part of ``plan`` on this machine (one call per machine).

    Every machine passes the same plan, model, input, nodes and network; ``address:port``
    is where the device (rank 0) listens. Returns this node's bytes per link, stage times,
    and on the device the packed outputs.
    """
    from d3opt.executor import Executor

    runner = Executor(model, example_input, graph=graph, nodes=nodes, network=network,
                      dtype=dtype)
    job = runner.prepare(plan)
    names = list(job.node_names)
    if node not in names:
        raise ExecutionError(f"no node named {node!r}; nodes are {names}")
    return _serve_rank(job, names.index(node), runner.inputs, address=address, port=port,
                       timeout=timeout)


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _stop(processes) -> None:
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)


def run_distributed(job, inputs: Sequence[torch.Tensor], *, timeout: float, address: str,
                    port: int, on_start: Callable[[dict[str, int]], None] | None = None):
    """Start one process per node on this machine, run ``job``, gather what they measured.

    Returns ``(outputs, links, stages, total_time)``. Raises :class:`ExecutionError` when a
    process fails or dies, or when the run has not finished after ``timeout`` seconds.
    """
    names = list(job.node_names)
    world = len(names)
    port = port or _free_port(address)
    context = mp.get_context("spawn")
    results = context.Queue()
    threads = max(1, (os.cpu_count() or 1) // world)
    processes = []
    for rank in range(world):
        process = context.Process(
            target=_worker, name=f"d3opt-{names[rank]}", daemon=True,
            args=(rank, node_job(job, rank), tuple(inputs) if rank == 0 else (), address, port,
                  timeout, threads, results))
        process.start()
        processes.append(process)
    try:
        if on_start is not None:
            on_start({name: p.pid for name, p in zip(names, processes)})
        stats = _gather(processes, names, results, timeout)
    finally:
        _stop(processes)
    links: dict[str, list[int]] = {}
    stages = []
    for rank in range(world):
        for link, counts in stats[rank]["links"].items():
            links[link] = [a + b for a, b in zip(links.get(link, [0, 0, 0]), counts)]
        stages.extend(stats[rank]["stages"])
    outputs = tuple(t for _, _, t in unpack(stats[0]["outputs"]))
    stages.sort(key=lambda s: s.wall)
    return outputs, links, tuple(stages), stats[0]["total"]


def _gather(processes, names, results, timeout: float) -> dict[int, dict]:
    deadline = time.monotonic() + timeout
    stats: dict[int, dict] = {}
    while len(stats) < len(processes):
        try:
            rank, status, payload = results.get(timeout=0.2)
        except queue_module.Empty:
            for rank, process in enumerate(processes):
                if rank not in stats and process.exitcode not in (None, 0):
                    code = process.exitcode
                    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                    raise ExecutionError(
                        f"node {names[rank]!r} (rank {rank}) {how} during the run") from None
            if time.monotonic() > deadline:
                waiting = [names[r] for r in range(len(processes)) if r not in stats]
                raise ExecutionError(
                    f"distributed run did not finish within {timeout:g} s; no answer from "
                    f"nodes {waiting}") from None
            continue
        if status == "error":
            time.sleep(0.5)  # a peer that died first is the cause: name it
            dead = [f"{names[r]!r} (rank {r}, signal {-p.exitcode})"
                    for r, p in enumerate(processes) if p.exitcode is not None and p.exitcode < 0]
            cause = f"node {dead[0]} died; " if dead else ""
            raise ExecutionError(f"{cause}node {names[rank]!r} (rank {rank}) failed:\n{payload}")
        stats[rank] = payload
    return stats
