"""Run a prepared :class:`~d3opt.executor.job.Job` in one process, tier after tier.

Every tensor that crosses a link is serialised with :mod:`d3opt.executor.wire` and read back
on the other side, exactly as it would travel over the network, and its bytes are counted.
Tiles of a tiled block run one after another; each non-coordinator tile's input slice and
output band are serialised and counted on the edge LAN (``"edge<->edge"``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from d3opt.executor.job import Job, TiledRun
from d3opt.executor.report import StageTime
from d3opt.executor.wire import header_bytes, pack, unpack
from d3opt.system import Tier


class _Ledger:
    """Bytes and messages per link, and compute time per stage."""

    def __init__(self):
        self.links: dict[str, list[int]] = {}
        self.stages: list[StageTime] = []

    def carry(self, link: str, data: bytes) -> list:
        header = header_bytes(data)
        count = self.links.setdefault(link, [0, 0, 0])
        count[0] += len(data) - header
        count[1] += header
        count[2] += 1
        return unpack(data)

    def timed(self, stage: str, node: str, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        self.stages.append(StageTime(stage, node, time.perf_counter() - start))
        return result


def run_tiled(run: TiledRun, entry: torch.Tensor, name: str, ledger: _Ledger) -> torch.Tensor:
    """Cut ``entry`` into the tiles' input slices, run each tile, stitch the bands along H."""
    bands = []
    for index, (node, tile) in enumerate(zip(run.nodes, run.tiles)):
        first, last = tile.in_rows
        piece = entry[:, :, first:last + 1].clone()
        if index:  # the coordinator keeps its own slice; the others get theirs over the LAN
            (_, _, piece), = ledger.carry("edge<->edge", pack([(name, node, piece)]))
        (band,) = ledger.timed(f"{run.piece}[{index}]", node, tile.module, piece)
        if index:
            (_, _, band), = ledger.carry("edge<->edge", pack([(name, "coordinator", band)]))
        bands.append(band)
    return torch.cat(bands, dim=2)


def run_inprocess(job: Job, inputs: Sequence[torch.Tensor]):
    """Run ``job`` on ``inputs``; return ``(outputs, ledger)``."""
    split, ledger = job.split, _Ledger()
    env = {tier: {} for tier in Tier}
    env[Tier.DEVICE].update(zip(split.inputs, inputs))
    names = job.node_names
    holder = {Tier.DEVICE: names[0], Tier.EDGE: names[1], Tier.CLOUD: names[-1]}

    def send(link: str) -> None:
        route = job.routes.get(link)
        if route is None:
            return
        source = env[route.src]
        data = pack([(name, dest.name.lower(), source[name]) for name, dest in route.entries])
        for name, _, tensor in ledger.carry(link, data):
            env[route.dst].setdefault(name, tensor)

    def compute(tier: Tier) -> None:
        local = env[tier]
        for piece in split.pieces:
            if piece.tier != tier:
                continue
            if piece.name in job.tiled:
                (entry,) = piece.inputs
                outputs = (run_tiled(job.tiled[piece.name], local[entry], entry, ledger),)
            else:
                outputs = ledger.timed(piece.name, holder[tier], piece.module,
                                       *[local[n] for n in piece.inputs])
            local.update(zip(piece.outputs, outputs))

    with torch.inference_mode():
        compute(Tier.DEVICE)
        send("device->edge")
        send("device->cloud")
        compute(Tier.EDGE)
        send("edge->cloud")
        compute(Tier.CLOUD)
        send("cloud->edge")
        send("cloud->device")
        send("edge->device")
    outputs = tuple(env[Tier.DEVICE][name] for name in split.outputs)
    return outputs, ledger
