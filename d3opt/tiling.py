"""Vertical separation: spatial tiles of edge-side convolution blocks.

A *block* is a set of tileable layers (conv, pool, bn, act, add, mul, concat, identity on
4-D maps) fed by exactly one outside tensor (the *entry*) and leaving through exactly one
layer (the *exit*). Its exit map is cut into ``k`` horizontal bands (rows), one per edge node
taking part; each node computes its band through the whole block from an input slice that
includes the halo found by walking the block backwards through each layer's receptive field:
output rows ``[a, b]`` of a conv/pool need input rows
``[a*s - p, b*s - p + d*(kernel-1)]``, clamped to the map.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph, Window
>>> w = Window(kernel=3, stride=1, padding=1)
>>> g = LayerGraph([Layer("x", "input", out_shape=(1, 3, 8, 8)),
...                 Layer("c1", "conv", out_shape=(1, 4, 8, 8), window=w),
...                 Layer("c2", "conv", out_shape=(1, 4, 8, 8), window=w)],
...                [("x", "c1"), ("c1", "c2")])
>>> b = make_block(g, ["c1", "c2"])
>>> b.entry, b.exit, rows_needed(g, b, (0, 3))["x"]
('x', 'c2', (0, 5))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from d3opt.cost import CostModel
from d3opt.errors import PlanError
from d3opt.graph import WINDOW_OPS, LayerGraph


@dataclass(frozen=True)
class Block:
    """A single-entry single-exit set of tileable layers (layers in topological order)."""

    layers: tuple[str, ...]
    entry: str
    exit: str


@dataclass(frozen=True)
class TileCost:
    """What one edge node does for one tile of a block."""

    node: str
    out_rows: tuple[int, int]
    in_rows: tuple[int, int]
    send_bytes: int
    return_bytes: int
    compute: float
    send: float
    ret: float


@dataclass(frozen=True)
class BlockCost:
    """Time of a block cut into ``k`` tiles, with the per-node detail."""

    block: Block
    k: int
    time: float
    lan_bytes: int
    tiles: tuple[TileCost, ...]

    @property
    def nodes(self) -> tuple[str, ...]:
        """Names of the edge nodes taking part, coordinator first."""
        return tuple(t.node for t in self.tiles)


def make_block(graph: LayerGraph, layers: Iterable[str]) -> Block:
    """Check that ``layers`` form a tileable single-entry single-exit block and describe it.

    Raises
    ------
    PlanError
        Naming the layer that breaks the rule.
    """
    names = set(layers)
    if not names:
        raise PlanError("a tiled block needs at least one layer")
    for name in names:
        if name not in graph:
            raise PlanError(f"tiled block names unknown layer {name!r}")
        if not graph[name].tileable:
            raise PlanError(f"layer {name!r} (op {graph[name].op!r}) cannot be tiled")
    outside_inputs = {p for n in names for p in graph.preds(n) if p not in names}
    if len(outside_inputs) != 1:
        raise PlanError(
            f"a tiled block must read exactly one outside tensor; {sorted(names)} reads "
            f"{sorted(outside_inputs)}"
        )
    (entry,) = outside_inputs
    if not graph[entry].is_map:
        raise PlanError(f"tiled block entry {entry!r} is not a 4-D feature map")
    exits = [n for n in names if not any(s in names for s in graph.succs(n))]
    if len(exits) != 1:
        raise PlanError(f"a tiled block must have one exit layer; {sorted(names)} has {sorted(exits)}")
    (exit_,) = exits
    for n in names:
        if n != exit_ and any(s not in names for s in graph.succs(n)):
            raise PlanError(f"layer {n!r} inside a tiled block feeds a layer outside it")
    ordered = tuple(sorted(names, key=graph.index.__getitem__))
    return Block(layers=ordered, entry=entry, exit=exit_)


def _height(graph: LayerGraph, name: str) -> int:
    return graph[name].out_shape[2]


def rows_needed(graph: LayerGraph, block: Block, out_rows: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Rows of every block layer's output (and of the entry) needed for exit rows ``out_rows``.

    Rows are inclusive ``(first, last)`` pairs. Branches are joined by the hull of the
    ranges their consumers need.
    """
    need: dict[str, tuple[int, int]] = {block.exit: out_rows}
    for name in reversed(block.layers):
        if name not in need:
            continue
        a, b = need[name]
        layer = graph[name]
        for pred in graph.preds(name):
            h_in = _height(graph, pred)
            if layer.op in WINDOW_OPS:
                w = layer.window
                lo = a * w.stride[0] - w.padding[0]
                hi = b * w.stride[0] - w.padding[0] + w.dilation[0] * (w.kernel[0] - 1)
            else:
                lo, hi = a, b
            lo, hi = max(lo, 0), min(hi, h_in - 1)
            if pred in need:
                lo, hi = min(lo, need[pred][0]), max(hi, need[pred][1])
            need[pred] = (lo, hi)
    return need


def split_rows(height: int, weights: "np.ndarray | list[float]") -> list[tuple[int, int]]:
    """Cut ``height`` rows into contiguous bands proportional to ``weights`` (each >= 1 row).

    Largest-remainder rounding; ties go to the earlier band.

    >>> split_rows(10, [1, 1, 2])
    [(0, 2), (3, 4), (5, 9)]
    """
    weights = np.asarray(weights, dtype=float)
    k = len(weights)
    if k < 1 or height < k:
        raise PlanError(f"cannot cut {height} rows into {k} tiles")
    if not np.all(np.isfinite(weights)) or weights.sum() <= 0:
        weights = np.ones(k)
    ideal = height * weights / weights.sum()
    sizes = np.floor(ideal).astype(int)
    order = sorted(range(k), key=lambda i: (-(ideal[i] - sizes[i]), i))
    for i in order[: height - sizes.sum()]:
        sizes[i] += 1
    for i in range(k):
        while sizes[i] < 1:
            donor = int(np.argmax(sizes))
            sizes[donor] -= 1
            sizes[i] += 1
    bands, start = [], 0
    for size in sizes:
        bands.append((start, start + int(size) - 1))
        start += int(size)
    return bands


def tile_nodes(cost: CostModel, block: Block, k: int) -> list[int]:
    """Indices (into ``nodes.edge``) of the ``k`` edge nodes that run the tiles.

    The coordinator always takes part (it holds the entry tensor); the other ``k-1`` are the
    fastest remaining edge nodes for this block, ties broken by position.
    """
    K = cost.nodes.K
    if not 1 <= k <= K:
        raise PlanError(f"tile count {k} must be between 1 and K={K}")
    block_time = sum(cost.edge_times(n) for n in block.layers)
    others = sorted(range(1, K), key=lambda i: (block_time[i], i))
    return [0, *others[: k - 1]]


def block_cost(cost: CostModel, block: Block, k: int) -> BlockCost:
    """Time of ``block`` on the edge tier cut into ``k`` tiles (``k = 1``: untiled).

    Each node's band of the exit map is proportional to its speed on the block. Node ``i``
    other than the coordinator receives its input slice (halo included) and returns its
    output band, each one message on the edge-edge link. Switched LAN: the block takes
    ``max_i(send_i + compute_i + return_i)``; shared LAN: ``sum_i send_i + max_i compute_i
    + sum_i return_i``. Compute of a layer is its full time scaled by the fraction of its
    rows the tile computes (halo rows are recomputed).
    """
    graph, link = cost.graph, cost.network.edge_edge
    members = tile_nodes(cost, block, k)
    per_node = np.array([sum(cost.edge_times(n)[i] for n in block.layers) for i in members])
    speeds = per_node.min() / per_node if np.all(per_node > 0) else np.ones(len(members))
    height = _height(graph, block.exit)
    if height < k:
        raise PlanError(f"block ending at {block.exit!r} has {height} rows; cannot cut {k} tiles")
    tiles = []
    for i, band in zip(members, split_rows(height, speeds)):
        need = rows_needed(graph, block, band)
        compute = sum(
            cost.edge_times(n)[i] * (need[n][1] - need[n][0] + 1) / _height(graph, n)
            for n in block.layers
        )
        in_rows = need[block.entry]
        if i == 0:
            send_bytes = return_bytes = 0
        else:
            send_bytes = _rows_bytes(graph, block.entry, in_rows)
            return_bytes = _rows_bytes(graph, block.exit, band)
        tiles.append(
            TileCost(
                node=cost.nodes.edge[i].name, out_rows=band, in_rows=in_rows,
                send_bytes=send_bytes, return_bytes=return_bytes, compute=float(compute),
                send=link.transfer_time(send_bytes), ret=link.transfer_time(return_bytes),
            )
        )
    if cost.network.lan == "switched":
        time = max(t.send + t.compute + t.ret for t in tiles)
    else:
        time = sum(t.send for t in tiles) + max(t.compute for t in tiles) + sum(t.ret for t in tiles)
    lan = sum(t.send_bytes + t.return_bytes for t in tiles)
    return BlockCost(block=block, k=k, time=float(time), lan_bytes=int(lan), tiles=tuple(tiles))


def _rows_bytes(graph: LayerGraph, name: str, rows: tuple[int, int]) -> int:
    layer = graph[name]
    return layer.out_bytes * (rows[1] - rows[0] + 1) // layer.out_shape[2]


def _cut_points(graph: LayerGraph) -> list[str]:
    """Layers every input-to-output path crosses, in topological order."""
    g = graph.nx.copy()
    src, dst = ("__source__",), ("__sink__",)
    g.add_edges_from((src, n) for n in graph.inputs)
    g.add_edges_from((n, dst) for n in graph.outputs)
    dom = nx.immediate_dominators(g, src)
    chain, node = [], dst
    while node != src:
        node = dom[node]
        chain.append(node)
    cuts = {n for n in chain if n != src}
    return [n for n in graph.order if n in cuts]


def candidate_blocks(graph: LayerGraph, *, max_segments: int = 8) -> tuple[Block, ...]:
    """Blocks the solvers may tile: runs of layers between two cut points of the graph.

    A cut point is a layer that every input-to-output path crosses. The layers strictly after
    cut point ``c_i`` up to and including cut point ``c_j`` form a candidate when all of them
    are tileable and the run spans at most ``max_segments`` consecutive cut points.

    >>> from d3opt.graph import Layer, LayerGraph, Window
    >>> w = Window(3, 1, 1)
    >>> g = LayerGraph([Layer("x", "input", out_shape=(1, 1, 4, 4))] +
    ...     [Layer(f"c{i}", "conv", out_shape=(1, 1, 4, 4), window=w) for i in range(2)],
    ...     [("x", "c0"), ("c0", "c1")])
    >>> [b.layers for b in candidate_blocks(g)]
    [('c0',), ('c0', 'c1'), ('c1',)]
    """
    if max_segments < 1:
        raise ValueError("max_segments must be >= 1")
    cuts = _cut_points(graph)
    position = {n: i for i, n in enumerate(cuts)}
    # segments[j]: the layers after cut point j-1 up to and including cut point j.
    segments: list[list[str]] = [[] for _ in cuts]
    current = 0
    for name in graph.order:
        if current < len(cuts):
            segments[current].append(name)
        if name in position:
            current += 1
    blocks = []
    for i in range(len(cuts)):
        if not graph[cuts[i]].is_map:
            continue
        layers: list[str] = []
        for j in range(i + 1, min(len(cuts), i + 1 + max_segments)):
            if not all(graph[n].tileable for n in segments[j]):
                break
            layers.extend(segments[j])
            blocks.append(Block(layers=tuple(layers), entry=cuts[i], exit=cuts[j]))
    return tuple(blocks)
