"""Everything a run of a plan needs, prepared once: pieces, tiles, messages, predictions.

Both executors (in-process and one process per node) run the same :class:`Job`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from d3opt.cost import CostModel
from d3opt.errors import PlanError
from d3opt.executor.pieces import Split, cut
from d3opt.executor.routing import Route, routes
from d3opt.executor.tiles import Tile, tile_modules
from d3opt.graph import LayerGraph
from d3opt.plan import Plan, evaluate_assignment
from d3opt.system import Link, Network, Node, Nodes
from d3opt.tiling import make_block


@dataclass(frozen=True)
class TiledRun:
    """A tiled block as it runs: per tile, the edge node that computes it and its graph."""

    piece: str
    nodes: tuple[str, ...]
    tiles: tuple[Tile, ...]


@dataclass(frozen=True)
class Job:
    """A plan ready to run: the split model, its tiles and messages, and the predictions.

    ``node_names`` are the names of ``nodes.all``: device, edge nodes (coordinator first),
    cloud.
    """

    split: Split
    tiled: Mapping[str, TiledRun]
    routes: Mapping[str, Route]
    predicted: Mapping[str, int]
    node_names: tuple[str, ...]
    direct: bool
    dtype: torch.dtype


def _default_system(plan: Plan) -> tuple[Nodes, Network]:
    if plan.tiles:
        raise PlanError("a plan with tiled blocks needs nodes= and network= to place its tiles")
    nodes = Nodes(Node("device", flops=1e9), [Node("edge0", flops=1e9)], Node("cloud", flops=1e9))
    link = Link(1e6)
    return nodes, Network(link, link, link)


def _in_dtype(graph: LayerGraph, dtype: torch.dtype) -> LayerGraph:
    """The graph with floating tensors in ``dtype`` (sizes follow)."""
    name = str(dtype).removeprefix("torch.")
    return graph.replace([
        dataclasses.replace(layer, dtype=name, out_bytes=None)
        for layer in graph.layers.values()
        if layer.dtype.startswith(("float", "bfloat")) and layer.out_shape is not None
    ])


def prepare(plan: Plan, program: torch.export.ExportedProgram, graph: LayerGraph, *,
            nodes: Nodes | None, network: Network | None, dtype: torch.dtype) -> Job:
    """Cut, tile and route ``plan`` on an exported ``program`` (in ``dtype``); predict its
    bytes per link with :func:`d3opt.evaluate` on ``graph`` in ``dtype``."""
    if (nodes is None) != (network is None):
        raise PlanError("give both nodes= and network=, or neither")
    if nodes is None:
        nodes, network = _default_system(plan)
    cost = CostModel(_in_dtype(graph, dtype), nodes, network)
    evaluation = evaluate_assignment(cost, plan.assignment, plan.tiles, pins=plan.pins)
    split = cut(program, graph, plan)
    tiled = {}
    for piece in split.pieces:
        if piece.block is None:
            continue
        block = make_block(graph, plan.tiles[piece.block].layers)
        (cost_of_block,) = [b for b in evaluation.blocks if b.block == block]
        tiles = tile_modules(piece, graph, [t.out_rows for t in cost_of_block.tiles])
        for tile, planned in zip(tiles, cost_of_block.tiles):
            if tile.in_rows != planned.in_rows:
                raise PlanError(f"tile of {piece.name!r} reads rows {tile.in_rows} but the cost "
                                f"model planned {planned.in_rows}")
        tiled[piece.name] = TiledRun(piece.name, cost_of_block.nodes, tuple(tiles))
    direct = network.device_cloud is not None
    return Job(split=split, tiled=tiled, routes=routes(split, direct=direct),
               predicted=dict(evaluation.link_bytes),
               node_names=tuple(n.name for n in nodes.all), direct=direct,
               dtype=dtype)
