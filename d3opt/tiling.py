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
    if weights.ndim != 1 or len(weights) < 1 or height < len(weights):
        raise PlanError(f"cannot cut {height} rows into {len(weights)} tiles")
    sizes = band_sizes(np.array([height]), weights[None, :])[0]
    ends = np.cumsum(sizes)
    return [(int(e - s), int(e - 1)) for s, e in zip(sizes, ends)]


def band_sizes(heights: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rows of each band when ``heights[r]`` rows are cut in proportion to ``weights[r]``.

    The batched form of :func:`split_rows`: ``weights`` is ``(R, k)`` with ``k <= heights``;
    a row of non-finite or non-positive weights is cut evenly. Returns an int array ``(R, k)``
    whose rows sum to ``heights``, every entry at least 1.

    >>> band_sizes(np.array([10, 7]), np.array([[1.0, 3.0], [1.0, 1.0]])).tolist()
    [[3, 7], [4, 3]]
    """
    heights = np.asarray(heights, dtype=np.int64)
    weights = np.array(weights, dtype=float)
    rows, k = weights.shape
    bad = ~np.all(np.isfinite(weights), axis=1) | ~(weights.sum(axis=1) > 0)
    weights[bad] = 1.0
    ideal = heights[:, None] * weights / weights.sum(axis=1, keepdims=True)
    sizes = np.floor(ideal).astype(np.int64)
    order = np.argsort(-(ideal - sizes), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(k)[None, :].repeat(rows, axis=0), axis=1)
    sizes += rank < (heights - sizes.sum(axis=1))[:, None]
    for i in range(k):  # give every band one row, taken from the largest band
        short = np.flatnonzero(sizes[:, i] < 1)
        while short.size:
            donor = np.argmax(sizes[short], axis=1)
            sizes[short, donor] -= 1
            sizes[short, i] += 1
            short = short[sizes[short, i] < 1]
    return sizes


def band_weights(member_times: np.ndarray) -> np.ndarray:
    """Shares of the exit rows for nodes taking ``member_times`` seconds for a whole block.

    Proportional to speed (``1 / time``), normalised per row and rounded to 1e-9 so that
    the same block gets the same bands however its times were summed; rows with a
    non-positive time are shared evenly. ``member_times`` is ``(..., k)``.

    >>> band_weights(np.array([1.0, 3.0])).tolist()
    [0.75, 0.25]
    """
    times = np.asarray(member_times, dtype=float)
    positive = np.all(times > 0, axis=-1, keepdims=True)
    safe = np.where(positive, times, 1.0)
    speeds = np.where(positive, safe.min(axis=-1, keepdims=True) / safe, 1.0)  # in (0, 1]
    return np.round(speeds / speeds.sum(axis=-1, keepdims=True), 9)


def helper_order(block_times: np.ndarray) -> np.ndarray:
    """Indices of the non-coordinator edge nodes, fastest first, for each row of
    ``block_times`` (``(..., K)``, coordinator first): ties (within 1e-9 relative) go to the
    earlier node.

    >>> helper_order(np.array([5.0, 2.0, 1.0, 2.0])).tolist()
    [2, 1, 3]
    """
    times = np.asarray(block_times, dtype=float)
    scale = np.max(np.abs(times), axis=-1, keepdims=True)
    key = np.round(times[..., 1:] / np.where(scale > 0, scale, 1.0), 9)
    return np.argsort(key, axis=-1, kind="stable") + 1


def tile_nodes(cost: CostModel, block: Block, k: int) -> list[int]:
    """Indices (into ``nodes.edge``) of the ``k`` edge nodes that run the tiles.

    The coordinator always takes part (it holds the entry tensor); the other ``k-1`` are the
    fastest remaining edge nodes for this block (:func:`helper_order`).
    """
    K = cost.nodes.K
    if not 1 <= k <= K:
        raise PlanError(f"tile count {k} must be between 1 and K={K}")
    block_time = sum(cost.edge_times(n) for n in block.layers)
    return [0, *(int(i) for i in helper_order(block_time)[: k - 1])]


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
    speeds = band_weights(per_node)
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


@dataclass(frozen=True, eq=False)
class TilingGeometry:
    """The cost-independent halo geometry of some blocks, tabulated for every exit band.

    Built once per graph by :func:`tiling_geometry`; :func:`block_times` then times every
    block for every tile count with a few numpy operations. Blocks sharing an exit share one
    backward walk (*group*) over the union of their layers (*slots*): a layer's needed rows
    depend only on the exit band and the layers between it and the exit. In that walk the
    first needed row of a layer depends only on the band's first row and the last needed row
    only on the band's last row, so both are tabulated for every exit row. Arrays (``B``
    blocks, ``G`` groups, ``L`` slots per group, ``H`` rows of the tallest exit):

    - ``group`` ``(B,)``, ``inside`` ``(B, L)``: each block's group and which slots it holds;
    - ``height``, ``entry_height``, ``entry_bytes``, ``exit_bytes``, ``params`` ``(B,)``;
    - ``entry_first``, ``entry_last`` ``(B, H)``: entry rows read for a band starting (ending)
      at each exit row;
    - ``slot_layer``, ``slot_rows`` ``(G, L)``: graph index and rows of each slot's layer;
    - ``first``, ``last`` ``(G, H, L)``: first (last) row of each slot computed for a band
      starting (ending) at each exit row.
    """

    blocks: tuple[Block, ...]
    group: np.ndarray
    inside: np.ndarray
    height: np.ndarray
    entry_height: np.ndarray
    entry_bytes: np.ndarray
    exit_bytes: np.ndarray
    params: np.ndarray
    entry_first: np.ndarray
    entry_last: np.ndarray
    slot_layer: np.ndarray
    slot_rows: np.ndarray
    first: np.ndarray
    last: np.ndarray


def _window_rows(graph: LayerGraph, name: str, lo: np.ndarray, hi: np.ndarray):
    """Input rows (unclamped) that output rows ``lo..hi`` of layer ``name`` read."""
    layer = graph[name]
    if layer.op not in WINDOW_OPS:
        return lo, hi
    w = layer.window
    return (lo * w.stride[0] - w.padding[0],
            hi * w.stride[0] - w.padding[0] + w.dilation[0] * (w.kernel[0] - 1))


def _clamped_hull(need: dict, name: str, lo: np.ndarray, hi: np.ndarray, rows: int) -> None:
    lo, hi = np.maximum(lo, 0), np.minimum(hi, rows - 1)
    if name in need:
        lo, hi = np.minimum(lo, need[name][0]), np.maximum(hi, need[name][1])
    need[name] = (lo, hi)


def tiling_geometry(graph: LayerGraph, blocks: Iterable[Block]) -> TilingGeometry:
    """Tabulate the halo geometry of ``blocks`` (see :class:`TilingGeometry`).

    It agrees with :func:`rows_needed` for every block and band.

    >>> from d3opt.graph import Layer, LayerGraph, Window
    >>> w = Window(3, 1, 1)
    >>> g = LayerGraph([Layer("x", "input", out_shape=(1, 1, 6, 6))] +
    ...     [Layer(f"c{i}", "conv", out_shape=(1, 1, 6, 6), window=w) for i in range(2)],
    ...     [("x", "c0"), ("c0", "c1")])
    >>> geo = tiling_geometry(g, candidate_blocks(g))
    >>> b = geo.blocks.index(make_block(g, ["c0", "c1"]))
    >>> int(geo.entry_first[b, 2]), int(geo.entry_last[b, 3])   # exit rows 2..3 read x rows 0..5
    (0, 5)
    """
    blocks = tuple(blocks)
    groups: dict[str, list[int]] = {}
    for b, block in enumerate(blocks):
        groups.setdefault(block.exit, []).append(b)
    n_blocks = len(blocks)
    tallest = max((_height(graph, b.exit) for b in blocks), default=1)
    longest = max((len({n for b in ids for n in blocks[b].layers}) for ids in groups.values()),
                  default=1)
    first = np.zeros((len(groups), tallest, longest), dtype=np.int64)
    last = np.full((len(groups), tallest, longest), -1, dtype=np.int64)
    slot_layer = np.zeros((len(groups), longest), dtype=np.intp)
    slot_rows = np.ones((len(groups), longest), dtype=np.int64)
    inside = np.zeros((n_blocks, longest), dtype=bool)
    group = np.zeros(n_blocks, dtype=np.intp)
    entry_first = np.zeros((n_blocks, tallest), dtype=np.int64)
    entry_last = np.zeros((n_blocks, tallest), dtype=np.int64)
    for g, (exit_, ids) in enumerate(groups.items()):
        slots = sorted({n for b in ids for n in blocks[b].layers}, key=graph.index.__getitem__)
        members = set(slots)
        rows = np.arange(_height(graph, exit_))
        need = {exit_: (rows, rows)}
        for name in reversed(slots):
            lo, hi = _window_rows(graph, name, *need[name])
            for pred in graph.preds(name):
                if pred in members:
                    _clamped_hull(need, pred, lo, hi, _height(graph, pred))
        width = len(slots)
        first[g, : len(rows), :width] = np.stack([need[n][0] for n in slots], axis=1)
        last[g, : len(rows), :width] = np.stack([need[n][1] for n in slots], axis=1)
        slot_layer[g, :width] = [graph.index[n] for n in slots]
        slot_rows[g, :width] = [_height(graph, n) for n in slots]
        for b in ids:
            block = blocks[b]
            group[b] = g
            inside[b, :width] = [n in block.layers for n in slots]
            reads: dict = {}
            for consumer in graph.succs(block.entry):
                if consumer in block.layers:
                    lo, hi = _window_rows(graph, consumer, *need[consumer])
                    _clamped_hull(reads, block.entry, lo, hi, _height(graph, block.entry))
            entry_first[b, : len(rows)], entry_last[b, : len(rows)] = reads[block.entry]
    arrays = dict(
        group=group, inside=inside,
        height=np.array([_height(graph, b.exit) for b in blocks], dtype=np.int64),
        entry_height=np.array([_height(graph, b.entry) for b in blocks], dtype=np.int64),
        entry_bytes=np.array([graph[b.entry].out_bytes for b in blocks], dtype=np.int64),
        exit_bytes=np.array([graph[b.exit].out_bytes for b in blocks], dtype=np.int64),
        params=np.array([sum(graph[n].param_bytes for n in b.layers) for b in blocks],
                        dtype=np.int64),
        entry_first=entry_first, entry_last=entry_last, slot_layer=slot_layer,
        slot_rows=slot_rows, first=first, last=last,
    )
    for array in arrays.values():
        array.setflags(write=False)
    return TilingGeometry(blocks=blocks, **arrays)


@dataclass(frozen=True)
class BlockTimes:
    """Times of some blocks of a :class:`TilingGeometry` for every tile count.

    ``time[r, k-1]`` is the time of block ``which[r]`` cut into ``k`` tiles (column 0: the
    block run untiled on the coordinator, every row of every layer); ``inf`` where the block has fewer than ``k`` exit rows or
    that count was not asked for. ``members[r, :k]`` are the edge nodes (indices into
    ``nodes.edge``, coordinator first) that run ``k`` tiles, as :func:`tile_nodes` picks them.
    """

    which: np.ndarray
    time: np.ndarray
    members: np.ndarray


def block_times(cost: CostModel, geometry: TilingGeometry, which=None, *,
                tiles=None) -> BlockTimes:
    """:func:`block_cost` times of blocks ``which`` (indices into ``geometry.blocks``; all
    when ``None``) for every tile count ``1..K``, vectorised over blocks and tiles.

    With ``tiles`` (a tile count per entry of ``which``) only that count (and ``k = 1``) is
    timed. Agrees with :func:`block_cost` to rounding.

    >>> from d3opt.graph import Layer, LayerGraph, Window
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> w = Window(3, 1, 1)
    >>> g = LayerGraph([Layer("x", "input", out_shape=(1, 8, 32, 32))] +
    ...     [Layer(f"c{i}", "conv", flops=1e9, out_shape=(1, 8, 32, 32), window=w)
    ...      for i in range(2)], [("x", "c0"), ("c0", "c1")])
    >>> nodes = Nodes(Node("d", flops=1e9), [Node("e0", flops=1e10), Node("e1", flops=1e10)],
    ...               Node("c", flops=1e11))
    >>> cost = CostModel(g, nodes, Network(Link(1e6), Link(1e9), Link(1e6)))
    >>> geo = tiling_geometry(g, [make_block(g, ["c0", "c1"])])
    >>> times = block_times(cost, geo).time[0]
    >>> bool(times[1] < times[0]), bool(np.isclose(times[1], block_cost(cost, geo.blocks[0], 2).time))
    (True, True)
    """
    geo = geometry
    which = np.arange(len(geo.blocks)) if which is None else np.asarray(which, dtype=np.intp)
    K = cost.nodes.K
    slot_times = cost.times[:, 1:1 + K][geo.slot_layer]  # (G, L, K)
    group, inside = geo.group[which], geo.inside[which]
    per_node = np.einsum("rl,rlk->rk", inside, slot_times[group])
    members = np.zeros((len(which), K), dtype=np.intp)
    members[:, 1:] = helper_order(per_node)
    time = np.full((len(which), K), np.inf)
    time[:, 0] = per_node[:, 0]
    link, shared = cost.network.edge_edge, cost.network.lan == "shared"
    height = geo.height[which]
    for k in range(2, K + 1):
        rows = np.flatnonzero((height >= k) & (True if tiles is None else np.asarray(tiles) == k))
        if rows.size == 0:
            continue
        mem = members[rows, :k]
        sizes = band_sizes(height[rows], band_weights(np.take_along_axis(per_node[rows], mem, 1)))
        last = np.cumsum(sizes, axis=1) - 1
        first = last - sizes + 1
        r = np.repeat(rows, k)
        g, a, b, m = group[r], first.ravel(), last.ravel(), mem.ravel()
        count = geo.last[g, b] - geo.first[g, a] + 1  # (T, L) rows each slot computes
        work = np.where(inside[r], count / geo.slot_rows[g], 0.0)
        compute = np.einsum("tl,tl->t", work, slot_times[g, :, m]).reshape(-1, k)
        w = which[r]
        read = geo.entry_last[w, b] - geo.entry_first[w, a] + 1
        helper = (np.arange(len(r)) % k) > 0
        sent = np.where(helper, geo.entry_bytes[w] * read // geo.entry_height[w], 0)
        back = np.where(helper, geo.exit_bytes[w] * sizes.ravel() // geo.height[w], 0)
        send = link.transfer_times(sent).reshape(-1, k)
        ret = link.transfer_times(back).reshape(-1, k)
        if shared:
            time[rows, k - 1] = send.sum(axis=1) + compute.max(axis=1) + ret.sum(axis=1)
        else:
            time[rows, k - 1] = (send + compute + ret).max(axis=1)
    return BlockTimes(which=which, time=time, members=members)


def _rows_bytes(graph: LayerGraph, name: str, rows: tuple[int, int]) -> int:
    layer = graph[name]
    return layer.out_bytes * (rows[1] - rows[0] + 1) // layer.out_shape[2]


def cut_points(graph: LayerGraph) -> list[str]:
    """Layers every input-to-output path crosses (immediate-dominator chain), in order.

    Cutting a graph just after a cut point leaves exactly one tensor alive.
    """
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
    cuts = cut_points(graph)
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
