"""Executor overhead: in-process run of a plan vs a plain forward pass, per zoo model.

For each model: an untiled three-tier plan (first third device, second edge, last cloud)
and the same plan with the largest candidate block tiled on ``--k`` edge nodes. Prints the
ratio of the pieces' compute time to a plain forward (median of ``--repeat`` runs; target
<= 1.2x untiled), and for the tiled block the measured recomputation overhead (sum of tile
times / untiled block time) next to what d3opt.tiling predicted (sum of tile compute /
untiled block compute).

    python benchmarks/executor_overhead.py --size 224 --k 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import d3opt
from d3opt.executor import Executor
from d3opt.tiling import block_cost, candidate_blocks, make_block


def _plan(graph, tiles=()):
    n = len(graph)
    tiers = {name: "device" if graph.index[name] < n // 3 else
             "edge" if graph.index[name] < 2 * n // 3 else "cloud" for name in graph.order}
    if tiles:
        (block,) = tiles
        first, last = graph.index[block.layers[0]], graph.index[block.layers[-1]]
        tiers = {name: "device" if graph.index[name] < first else "edge"
                 if graph.index[name] <= last else "cloud" for name in graph.order}
    return d3opt.Plan(tiers, tiles=list(tiles))


def _median(runner, plan, repeat, select):
    return statistics.median(select(runner.validate(plan)) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", default=",".join(d3opt.zoo.names()))
    args = parser.parse_args()
    torch.set_num_threads(1)
    wifi = d3opt.scenario("wifi")
    nodes = d3opt.Nodes(wifi.nodes.device, [d3opt.Node(f"e{i}", flops=100e9)
                                            for i in range(args.k)], wifi.nodes.cloud)
    print(f"input {args.size}x{args.size}, {args.k} equal edge nodes, 1 thread, "
          f"median of {args.repeat}")
    print(f"{'model':<14}{'forward ms':>11}{'pieces ms':>11}{'ratio':>7}   {'tiled block':<34}"
          f"{'measured':>9}{'predicted':>10}")
    for name in args.models.split(","):
        model = d3opt.zoo.get(name)
        x = torch.randn(1, 3, args.size, args.size)
        graph = d3opt.from_torch(model, x)
        runner = Executor(model, x, graph=graph, nodes=nodes, network=wifi.network)
        plain = statistics.median(_forward(model, x) for _ in range(args.repeat))
        pieces = _median(runner, _plan(graph), args.repeat, lambda r: r.compute_time)
        block = max((b for b in candidate_blocks(graph) if graph[b.exit].out_shape[2] >= args.k),
                    key=lambda b: sum(graph[n].flops for n in b.layers))
        tiled = d3opt.TiledBlock(block.layers, args.k)
        block_time = _block_time(runner, graph, block, args.repeat)
        tiles_time = statistics.median(
            sum(s.compute for s in runner.validate(_plan(graph, [tiled])).stages if "[" in s.stage)
            for _ in range(args.repeat))
        cost = d3opt.CostModel(graph, nodes, wifi.network)
        bc = block_cost(cost, make_block(graph, block.layers), args.k)
        predicted = sum(t.compute for t in bc.tiles) / sum(
            cost.edge_times(n)[0] for n in block.layers)
        label = f"{block.layers[0]}..{block.exit} ({len(block.layers)})"
        print(f"{name:<14}{plain * 1e3:>11.2f}{pieces * 1e3:>11.2f}{pieces / plain:>7.2f}   "
              f"{label[:34]:<34}{tiles_time / block_time:>9.3f}{predicted:>10.3f}")


def _forward(model, x) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        model(x)
        return time.perf_counter() - start


def _block_time(runner, graph, block, repeat) -> float:
    """Median seconds of the block's own piece run untiled."""
    job = runner.prepare(_plan(graph, [d3opt.TiledBlock(block.layers, 2)]))
    (piece,) = [p for p in job.split.pieces if p.block is not None]
    entry = torch.randn(graph[block.entry].out_shape)
    times = []
    with torch.inference_mode():
        for _ in range(repeat):
            start = time.perf_counter()
            piece.module(entry)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
