"""D3's heuristic horizontal partition (HPA) with vertical separation, and partial adjustment.

Reconstructed from Zhang et al., "Dynamic DNN Decomposition for Lossless Synergistic
Inference" (2021): the layers are laid out in one topological order; a device|edge cut ``i``
and an edge|cloud cut ``j`` split that order into a device prefix, an edge middle and a cloud
suffix. Every pair ``(i, j)`` is scored at once with numpy from prefix sums (compute) and
precomputed byte tables (tensors crossing each cut); the edge time of a pair includes the best
vertical separation of its edge part (disjoint tiled blocks chosen by a dynamic programme over
candidate blocks, each with its best tile count). Layers on branches are then moved one at a
time across a boundary while that lowers the latency and keeps the tiers monotone.

:func:`adjust` re-solves after a change of conditions (a new :class:`~d3opt.cost.CostModel`)
by searching only cut positions near the current ones and re-tiling only the edge layers that
moved. A :class:`Layout` (the order and byte tables of one graph) can be built once with
:func:`build_layout` and passed to both, so repeated solves skip that work.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> from d3opt.cost import CostModel
>>> g = LayerGraph([Layer("x", "input", out_bytes=100_000),
...                 Layer("a", "conv", flops=1e8, out_bytes=1_000),
...                 Layer("b", "linear", flops=4e10, out_bytes=4)], [("x", "a"), ("a", "b")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
>>> cost = CostModel(g, nodes, Network(Link(1e5), Link(1e8), Link(1e6)))
>>> plan = solve_hpa(cost, pins={})
>>> [plan.assignment[n].name for n in g.order], plan.info.status
(['DEVICE', 'DEVICE', 'CLOUD'], 'heuristic')
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from d3opt.cost import CostModel
from d3opt.errors import InfeasibleError, PlanError
from d3opt.graph import LayerGraph
from d3opt.plan import Plan, SolveInfo, TiledBlock, evaluate_assignment
from d3opt.system import Tier
from d3opt.tiling import (Block, BlockTimes, TilingGeometry, block_times, candidate_blocks,
                          cut_points, tile_nodes, tiling_geometry)

_INF = np.inf


# ---------------------------------------------------------------------------------------
# Layout: one topological order of a graph and everything about it that no cost changes.
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Layout:
    """The topological order HPA cuts and the byte tables of every cut pair.

    Positions ``0..n-1`` index :attr:`order`; a cut ``i`` sits before position ``i``. For a
    pair ``i <= j`` (device ``[0, i)``, edge ``[i, j)``, cloud ``[j, n)``):

    - ``de_bytes[i, j]``: bytes the device sends to the edge (tensors made before ``i`` read in
      ``[i, j)``), ``dc_bytes[i, j]``: bytes the device sends to the cloud, ``live[j]``: bytes
      of tensors made before ``j`` and read at or after ``j`` (so edge->cloud bytes are
      ``live[j] - dc_bytes[i, j]``), ``sink_prefix``: prefix sums of result bytes,
      ``param_prefix``: prefix sums of weight bytes.
    - ``blocks``: candidate tiled blocks (:func:`d3opt.tiling.candidate_blocks`) as position
      ranges ``[start, stop)`` (``block_span``; ``block_of`` maps a block's layers to its
      index) with their halo ``geometry``
      (:func:`d3opt.tiling.tiling_geometry`); ``floors``: the lowest tier each layer may use
      given the pins the layout was built for; ``anchors``: the cuts just after a layer that
      every input-to-output path crosses (:func:`d3opt.tiling.cut_points`), with ``0`` and
      ``n``.

    Build one with :func:`build_layout`. It is read-only apart from a memo of the block
    times of the last full solve (and the edge conditions they were timed under), which
    :func:`adjust` reuses while those conditions hold.
    """

    graph: LayerGraph
    order: tuple[str, ...]
    perm: np.ndarray
    position: Mapping[str, int]
    floors: tuple[int, ...]
    n_inputs: int
    src: np.ndarray
    dst: np.ndarray
    out_bytes: np.ndarray
    params: np.ndarray
    is_sink: np.ndarray
    de_bytes: np.ndarray
    dc_bytes: np.ndarray
    live: np.ndarray
    sink_prefix: np.ndarray
    param_prefix: np.ndarray
    blocks: tuple[Block, ...]
    block_span: np.ndarray
    block_of: Mapping[tuple[str, ...], int]
    geometry: TilingGeometry
    anchors: np.ndarray
    max_segments: int
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """Number of layers."""
        return len(self.order)


def _floors(graph: LayerGraph, pins: Mapping[str, Tier]) -> dict[str, int]:
    """Lowest tier each layer may take: the highest pin among its ancestors and itself."""
    floor = {}
    for name in graph.order:
        own = int(pins[name]) if name in pins else 0
        floor[name] = max([own, *(floor[p] for p in graph.preds(name))])
    return floor


def _greedy_order(graph: LayerGraph, floor: Mapping[str, int]) -> tuple[str, ...]:
    """A topological order that keeps few bytes alive between consecutive layers.

    Kahn's algorithm; among the ready layers it takes inputs first, then the lowest floor
    (so every pin-compatible prefix/middle/suffix split exists), then the layer whose run
    grows the live bytes least (its output minus the inputs it is the last reader of), then
    the graph's own order.
    """
    index = graph.index
    waiting = {n: len(graph.preds(n)) for n in graph.order}
    readers = {n: len(graph.succs(n)) for n in graph.order}
    ready = [n for n in graph.order if waiting[n] == 0]
    order = []

    def key(name: str):
        freed = sum(graph[p].out_bytes for p in graph.preds(name) if readers[p] == 1)
        return (graph[name].op != "input", floor[name], graph[name].out_bytes - freed,
                index[name])

    while ready:
        best = min(ready, key=key)
        ready.remove(best)
        order.append(best)
        for p in graph.preds(best):
            readers[p] -= 1
        for s in graph.succs(best):
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)
    return tuple(order)


def build_layout(graph: LayerGraph, *, pins: Mapping[str, "Tier | str"] | None = None,
                 max_segments: int = 8) -> Layout:
    """Order ``graph`` for HPA and precompute the bytes crossing every cut pair.

    Costs ``O(n^2)`` time and memory (``n`` layers) and does not depend on speeds or links:
    build it once per graph (and pin set) and pass it as ``layout=`` to :func:`solve_hpa`
    and :func:`adjust`.

    Parameters
    ----------
    graph : the layer graph.
    pins : ``{layer: tier}``; the order puts every layer forced to a higher tier by a pin
        after every layer that is not, so that pin-compatible cut pairs exist.
    max_segments : passed to :func:`d3opt.tiling.candidate_blocks`.

    Examples
    --------
    >>> from d3opt.graph import Layer, LayerGraph
    >>> g = LayerGraph([Layer("x", "input", out_bytes=8), Layer("a", "other", out_bytes=4),
    ...                 Layer("b", "other", out_bytes=2)], [("x", "a"), ("a", "b"), ("x", "b")])
    >>> lay = build_layout(g)
    >>> lay.order, int(lay.live[2]), int(lay.de_bytes[1, 3])
    (('x', 'a', 'b'), 12, 8)
    """
    pins = {k: Tier.parse(v) for k, v in (pins or {}).items()}
    floor = _floors(graph, pins)
    order = _greedy_order(graph, floor)
    n = len(order)
    position = {name: p for p, name in enumerate(order)}
    perm = np.array([graph.index[name] for name in order], dtype=np.intp)
    out_bytes = np.array([graph[name].out_bytes for name in order], dtype=float)
    params = np.array([graph[name].param_bytes for name in order], dtype=float)
    edges = [(position[u], position[v]) for u, v in graph.edges]
    edges.sort()
    src = np.array([u for u, _ in edges], dtype=np.intp)
    dst = np.array([v for _, v in edges], dtype=np.intp)
    last_reader = np.full(n, -1, dtype=np.intp)
    np.maximum.at(last_reader, src, dst)
    is_sink = last_reader < 0

    # Device -> edge bytes: tensor u made before i crosses to the edge when its first
    # reader at or after i sits before j. Enumerate the (u, i) pairs u is alive across.
    span = np.where(is_sink, 0, last_reader - np.arange(n))
    owner = np.repeat(np.arange(n), span)
    first = np.cumsum(span) - span
    cut = np.arange(n)[owner] + 1 + (np.arange(owner.size) - first[owner])
    reader_keys = src * (n + 1) + dst
    next_reader = dst[np.searchsorted(reader_keys, owner * (n + 1) + cut)]
    hist = np.bincount(cut * (n + 1) + next_reader, weights=out_bytes[owner],
                       minlength=(n + 1) * (n + 1)).reshape(n + 1, n + 1)
    de_bytes = np.zeros((n + 1, n + 1))
    de_bytes[:, 1:] = np.cumsum(hist, axis=1)[:, :n]
    # Device -> cloud bytes: made before i, last read at or after j.
    alive = ~is_sink
    corner = np.zeros((n + 1, n + 1))
    np.add.at(corner, (np.arange(n)[alive] + 1, last_reader[alive]), out_bytes[alive])
    dc_bytes = np.cumsum(np.cumsum(corner, axis=0)[:, ::-1], axis=1)[:, ::-1]
    live = np.bincount(cut, weights=out_bytes[owner], minlength=n + 1)
    sink_prefix = np.concatenate([[0.0], np.cumsum(np.where(is_sink, out_bytes, 0.0))])
    param_prefix = np.concatenate([[0.0], np.cumsum(params)])

    blocks = []
    for block in candidate_blocks(graph, max_segments=max_segments):
        start, stop = position[block.entry] + 1, position[block.exit] + 1
        if set(order[start:stop]) == set(block.layers):
            blocks.append(block)
    block_span = np.array([(position[b.entry] + 1, position[b.exit] + 1) for b in blocks],
                          dtype=np.intp).reshape(-1, 2)
    anchors = np.unique([0, n, *(position[c] + 1 for c in cut_points(graph))])
    for array in (perm, out_bytes, params, src, dst, is_sink, de_bytes, dc_bytes, live,
                  sink_prefix, param_prefix, block_span, anchors):
        array.setflags(write=False)
    return Layout(
        graph=graph, order=order, perm=perm, position=position,
        floors=tuple(floor[name] for name in order),
        n_inputs=sum(1 for name in order if graph[name].op == "input"),
        src=src, dst=dst, out_bytes=out_bytes, params=params, is_sink=is_sink,
        de_bytes=de_bytes, dc_bytes=dc_bytes, live=live, sink_prefix=sink_prefix,
        param_prefix=param_prefix, blocks=tuple(blocks), block_span=block_span,
        block_of=MappingProxyType({b.layers: i for i, b in enumerate(blocks)}),
        geometry=tiling_geometry(graph, blocks), anchors=anchors, max_segments=max_segments,
    )


def _layout_for(cost: CostModel, lay: Layout | None, pins: Mapping[str, Tier],
                max_segments: int) -> Layout:
    """``lay`` when it fits the graph, the pins and ``max_segments``, else a fresh layout."""
    if lay is not None and lay.graph is cost.graph and lay.max_segments == max_segments:
        if not pins:
            if not any(lay.floors):
                return lay
            return build_layout(cost.graph, pins=pins, max_segments=max_segments)
        floor = _floors(cost.graph, pins)
        if all(floor[name] == f for name, f in zip(lay.order, lay.floors)):
            return lay
    return build_layout(cost.graph, pins=pins, max_segments=max_segments)


# ---------------------------------------------------------------------------------------
# Cost tables of one instance.
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tiling:
    """Best tile count and time saved by tiling each candidate block (vs. untiled)."""

    k: np.ndarray
    saving: np.ndarray
    time: np.ndarray


def _edge_key(cost: CostModel) -> tuple:
    """What vertical separation depends on: edge-node layer times and memory caps, the
    edge-edge link and the LAN mode."""
    K = cost.nodes.K
    return (K, cost.times[:, 1:1 + K].tobytes(), tuple(n.memory for n in cost.nodes.edge),
            cost.network.edge_edge, cost.network.lan)


@dataclass(frozen=True)
class _Separation:
    """Vertical separation of some candidate blocks under one set of edge conditions."""

    timed: BlockTimes
    tiling: _Tiling
    chosen: np.ndarray  # the blocks that tiling speeds up
    bounds: np.ndarray
    table: np.ndarray  # see _separation_table


def _separation(cost: CostModel, lay: Layout, which: np.ndarray) -> _Separation:
    timed = block_times(cost, lay.geometry, which)
    tiling = _block_tiling(cost, lay, timed)
    chosen = which[tiling.saving[which] > 0]
    return _Separation(timed, tiling, chosen, *_separation_table(lay, tiling, chosen))


def _remembered(cost: CostModel, lay: Layout) -> _Separation | None:
    """The separation of every block found by the last full solve on ``lay``, when it was
    made under the edge conditions of ``cost``."""
    memo = lay._memo.get("separation")
    return memo[1] if memo is not None and memo[0] == _edge_key(cost) else None


def _block_tiling(cost: CostModel, lay: Layout, timed: BlockTimes) -> _Tiling:
    """Best tile count of the blocks ``timed.which`` and the time it saves (vs. untiled).

    A tile count is allowed when every helper node it uses can hold the block's weights;
    blocks that no count speeds up get ``k = 0`` and no saving.
    """
    nb, which = len(lay.blocks), timed.which
    best_k = np.zeros(nb, dtype=np.intp)
    best_time = np.full(nb, _INF)
    saving = np.zeros(nb)
    if cost.nodes.K < 2 or which.size == 0:
        return _Tiling(best_k, saving, best_time)
    tiled = np.where(_fits(cost, lay, timed), timed.time[:, 1:], _INF)
    column = np.argmin(tiled, axis=1)
    best_time[which] = tiled[np.arange(len(which)), column]
    gain = timed.time[:, 0] - best_time[which]
    useful = np.isfinite(best_time[which]) & (gain > 0)
    saving[which] = np.where(useful, gain, 0.0)
    best_k[which] = np.where(useful, column + 2, 0)
    return _Tiling(best_k, saving, best_time)


def _fits(cost: CostModel, lay: Layout, timed: BlockTimes) -> np.ndarray:
    """``(len(which), K-1)``: whether every helper of ``k = 2..K`` tiles holds the weights."""
    limits = np.array([n.memory if n.memory is not None else _INF for n in cost.nodes.edge])
    weights = lay.geometry.params[timed.which, None]
    return np.logical_and.accumulate(weights <= limits[timed.members[:, 1:]], axis=1)


def _separation_table(lay: Layout, tiling: _Tiling, chosen: np.ndarray):
    """Best total saving of disjoint tiled blocks inside every edge range ``[i, j)``.

    Blocks start and stop at cut points, so a dynamic programme over those boundaries
    (``table[a, b]``: best saving with blocks inside ``[bounds[a], bounds[b]]``) answers every
    range; returns ``(bounds, table)``.
    """
    spans = lay.block_span[chosen]
    bounds = np.unique(spans.ravel())
    m = len(bounds)
    table = np.zeros((m, m))
    if m == 0:
        return bounds, table
    starts = np.searchsorted(bounds, spans[:, 0])
    stops = np.searchsorted(bounds, spans[:, 1])
    gains = tiling.saving[chosen]
    by_stop = np.argsort(stops, kind="stable")
    edges = np.searchsorted(stops[by_stop], np.arange(m + 1))
    rows = np.arange(m)[:, None]
    for b in range(1, m):
        column = table[:, b - 1].copy()
        ending = by_stop[edges[b]:edges[b + 1]]
        if ending.size:
            a = starts[ending]
            options = np.where(rows <= a[None, :], table[:, a] + gains[ending][None, :], -_INF)
            np.maximum(column, options.max(axis=1), out=column)
        table[:, b] = column
    return bounds, table


def _edge_savings(lay: Layout, bounds: np.ndarray, table: np.ndarray, I: np.ndarray,
                  J: np.ndarray) -> np.ndarray:
    """Saving of the best vertical separation for the pairs ``(I, J)`` (cut arrays that
    broadcast: a grid as ``cuts[:, None], cuts[None, :]``, or two flat lists of pairs)."""
    if len(bounds) == 0:
        return np.zeros(np.broadcast_shapes(np.shape(I), np.shape(J)))
    a = np.searchsorted(bounds, I, side="left")
    b = np.searchsorted(bounds, J, side="right") - 1
    valid = (a <= b) & (a < len(bounds)) & (b >= 0)
    values = table[np.minimum(a, len(bounds) - 1), np.maximum(b, 0)]
    return np.where(valid, values, 0.0)


def _select_blocks(lay: Layout, tiling: _Tiling, chosen: np.ndarray, i: int, j: int) -> list[int]:
    """The disjoint blocks realising the best saving inside ``[i, j)`` (weighted interval
    scheduling over the blocks sorted by their end, ``O(m log m)``)."""
    inside = [int(b) for b in chosen if lay.block_span[b, 0] >= i and lay.block_span[b, 1] <= j
              and tiling.saving[b] > 0]
    inside.sort(key=lambda b: (lay.block_span[b, 1], lay.block_span[b, 0]))
    ends = [int(lay.block_span[b, 1]) for b in inside]
    best = [0.0]  # best[t]: the best saving using the first t blocks
    before = []  # before[t]: how many blocks end at or before block t starts
    for t, b in enumerate(inside):
        before.append(bisect.bisect_right(ends, int(lay.block_span[b, 0]), 0, t))
        best.append(max(best[t], best[before[t]] + float(tiling.saving[b])))
    picked, t = [], len(inside)
    while t > 0:
        if best[t] == best[t - 1]:
            t -= 1
        else:
            picked.append(inside[t - 1])
            t = before[t - 1]
    return picked[::-1]


@dataclass(frozen=True)
class _Tables:
    """Per-instance prefix sums in layout order."""

    tier: np.ndarray  # (n, 3) seconds on device, coordinator, cloud
    prefix: np.ndarray  # (n + 1, 3) prefix sums of ``tier``


def _tables(cost: CostModel, lay: Layout) -> _Tables:
    tier = cost.tier_times[lay.perm]
    return _Tables(tier=tier, prefix=np.vstack([np.zeros(3), np.cumsum(tier, axis=0)]))


def _pair_latency(cost: CostModel, lay: Layout, tab: _Tables, I: np.ndarray, J: np.ndarray,
                  saving: np.ndarray) -> np.ndarray:
    """Latency of the pairs ``(I, J)`` (broadcasting cut arrays); ``inf`` where ``i > j``."""
    net, n = cost.network, lay.n
    direct = net.device_cloud is not None
    de, dc = lay.de_bytes[I, J], lay.dc_bytes[I, J]
    ec = lay.live[J] - dc
    sinks_edge = lay.sink_prefix[J] - lay.sink_prefix[I]
    sinks_cloud = lay.sink_prefix[n] - lay.sink_prefix[J]
    pre = tab.prefix
    latency = (pre[I, 0] + pre[J, 1] - pre[I, 1] - saving + pre[n, 2] - pre[J, 2])
    de_link, ec_link, dc_link = net.device_edge, net.edge_cloud, net.device_cloud
    if direct:
        latency = (latency + de_link.transfer_times(de) + ec_link.transfer_times(ec)
                   + dc_link.transfer_times(dc) + dc_link.transfer_times(sinks_cloud)
                   + de_link.transfer_times(sinks_edge))
    else:
        latency = (latency + de_link.transfer_times(de + dc) + ec_link.transfer_times(ec + dc)
                   + ec_link.transfer_times(sinks_cloud)
                   + de_link.transfer_times(sinks_edge + sinks_cloud))
    return np.where(I <= J, latency, _INF)


def _pair_mask(cost: CostModel, lay: Layout, pins: Mapping[str, Tier], I: np.ndarray,
               J: np.ndarray) -> np.ndarray:
    """Pairs that honour the pins and the device, coordinator and cloud memory caps."""
    i_lo, i_hi, j_lo, j_hi = lay.n_inputs, lay.n, 0, lay.n
    for name, tier in pins.items():
        p = lay.position[name]
        if tier == Tier.DEVICE:
            i_lo = max(i_lo, p + 1)
        elif tier == Tier.EDGE:
            i_hi, j_lo = min(i_hi, p), max(j_lo, p + 1)
        else:
            i_hi, j_hi = min(i_hi, p), min(j_hi, p)
    ok = (I >= i_lo) & (I <= i_hi) & (J >= j_lo) & (J <= j_hi) & (I <= J)
    pp, n = lay.param_prefix, lay.n
    for tier, held in ((Tier.DEVICE, pp[I]), (Tier.EDGE, pp[J] - pp[I]),
                       (Tier.CLOUD, pp[n] - pp[J])):
        cap = cost.nodes.tier_node(tier).memory
        if cap is not None:
            ok = ok & (held <= cap)
    return ok


# ---------------------------------------------------------------------------------------
# A fast evaluator (for local moves) and the local refinement.
# ---------------------------------------------------------------------------------------
def _fast_latency(cost: CostModel, lay: Layout, tab: _Tables, tiers: np.ndarray,
                  tiled: np.ndarray, tile_time: float) -> float:
    """:func:`d3opt.plan.evaluate_assignment`'s latency for tiers in layout order."""
    net, b = cost.network, lay.out_bytes
    free = ~tiled
    compute = np.bincount(tiers[free], weights=tab.tier[free, tiers[free]], minlength=3)
    compute[1] += tile_time
    to = tiers[lay.dst]
    reads = [np.zeros(lay.n, dtype=bool) for _ in range(3)]
    for dest in (1, 2):
        reads[dest][lay.src[to == dest]] = True
    de = b[(tiers == 0) & reads[1]].sum()
    dc = b[(tiers == 0) & reads[2]].sum()
    ec = b[(tiers == 1) & reads[2]].sum()
    back_e = b[lay.is_sink & (tiers == 1)].sum()
    back_c = b[lay.is_sink & (tiers == 2)].sum()
    total = compute.sum()
    if net.device_cloud is not None:
        parts = [(net.device_edge, de), (net.edge_cloud, ec), (net.device_cloud, dc),
                 (net.device_cloud, back_c), (net.device_edge, back_e)]
    else:
        parts = [(net.device_edge, de + dc), (net.edge_cloud, ec + dc),
                 (net.edge_cloud, back_c), (net.device_edge, back_e + back_c)]
    return float(total + sum(link.transfer_time(x) for link, x in parts))


def _memory_ok(cost: CostModel, lay: Layout, tiers: np.ndarray) -> bool:
    held = np.bincount(tiers, weights=lay.params, minlength=3)
    return all(cost.nodes.tier_node(t).memory is None or held[t] <= cost.nodes.tier_node(t).memory
               for t in Tier)


def _refine(cost: CostModel, lay: Layout, tab: _Tables, tiers: np.ndarray, tiled: np.ndarray,
            tile_time: float, pins: Mapping[str, Tier], *, max_moves: int) -> np.ndarray:
    """Move single untiled layers across a boundary while the latency drops (best move first)."""
    tiers = tiers.copy()
    frozen = tiled.copy()
    frozen[: lay.n_inputs] = True
    for name in pins:
        frozen[lay.position[name]] = True
    current = _fast_latency(cost, lay, tab, tiers, tiled, tile_time)
    for _ in range(max_moves):
        low_succ = np.full(lay.n, 2)
        np.minimum.at(low_succ, lay.src, tiers[lay.dst])
        high_pred = np.zeros(lay.n, dtype=tiers.dtype)
        np.maximum.at(high_pred, lay.dst, tiers[lay.src])
        up = np.flatnonzero(~frozen & (tiers < 2) & (low_succ >= tiers + 1))
        down = np.flatnonzero(~frozen & (tiers > 0) & (high_pred <= tiers - 1))
        best, move = current, None
        for p, step in [(p, 1) for p in up] + [(p, -1) for p in down]:
            tiers[p] += step
            if _memory_ok(cost, lay, tiers):
                value = _fast_latency(cost, lay, tab, tiers, tiled, tile_time)
                if value < best - 1e-12 * max(1.0, abs(best)):
                    best, move = value, (p, step)
            tiers[p] -= step
        if move is None:
            break
        tiers[move[0]] += move[1]
        current = best
    return tiers


# ---------------------------------------------------------------------------------------
# Building the plan.
# ---------------------------------------------------------------------------------------
def _tier_array(lay: Layout, i: int, j: int) -> np.ndarray:
    tiers = np.zeros(lay.n, dtype=np.intp)
    tiers[i:j] = 1
    tiers[j:] = 2
    return tiers


def _fit_tiles(cost: CostModel, lay: Layout, tiling: _Tiling, picked: list[int]) -> list[int]:
    """Drop the least useful tiled blocks until every helper edge node's memory cap holds."""
    caps = [n.memory for n in cost.nodes.edge]
    kept = sorted(picked, key=lambda b: -tiling.saving[b])
    while kept and any(c is not None for c in caps[1:]):
        held = np.zeros(cost.nodes.K)
        for b in kept:
            start, stop = lay.block_span[b]
            held[tile_nodes(cost, lay.blocks[b], int(tiling.k[b]))[1:]] += (
                lay.param_prefix[stop] - lay.param_prefix[start])
        if all(c is None or held[i] <= c for i, c in enumerate(caps) if i > 0):
            break
        kept.pop()
    return kept


def _tiles_of(lay: Layout, tiling: _Tiling, picked: Sequence[int]) -> tuple[TiledBlock, ...]:
    ordered = sorted(picked, key=lambda b: lay.block_span[b, 0])
    return tuple(TiledBlock(lay.blocks[b].layers, int(tiling.k[b])) for b in ordered)


def _finish(cost: CostModel, lay: Layout, tab: _Tables, tiers: np.ndarray, picked: list[int],
            tiling: _Tiling, pins: Mapping[str, Tier], *, refine: bool, backend: str,
            start: float, message: str) -> Plan:
    tiled = np.zeros(lay.n, dtype=bool)
    for b in picked:
        tiled[lay.block_span[b, 0]:lay.block_span[b, 1]] = True
    tile_time = float(sum(tiling.time[b] for b in picked))
    if refine:
        tiers = _refine(cost, lay, tab, tiers, tiled, tile_time, pins, max_moves=lay.n)
    graph_order = tiers[np.argsort(lay.perm)]
    assignment = dict(zip(lay.graph.order, map(Tier, graph_order.tolist())))
    tiles = _tiles_of(lay, tiling, picked)
    try:
        return _scored_plan(cost, assignment, tiles, pins, backend=backend, start=start,
                            message=message)
    except PlanError as err:
        raise InfeasibleError(f"memory caps: HPA's best plan breaks a cap: {err}") from None


def _scored_plan(cost: CostModel, assignment: Mapping[str, Tier], tiles, pins, *,
                 backend: str, start: float, message: str) -> Plan:
    """The HPA plan of ``assignment`` and ``tiles``, scored by :func:`evaluate_assignment`."""
    evaluation = evaluate_assignment(cost, assignment, tiles, pins=pins)
    info = SolveInfo(backend=backend, status="heuristic", objective=evaluation.latency,
                     wall_time=time.perf_counter() - start, message=message)
    return Plan(assignment, tiles=tiles, pins=pins, method="hpa", info=info,
                evaluation=evaluation)


def _no_pair(pins: Mapping[str, Tier]) -> InfeasibleError:
    if pins:
        return InfeasibleError(
            "pins or memory caps: no device|edge|cloud split of HPA's layer order honours the "
            f"pins {({k: v.name.lower() for k, v in pins.items()})} and the memory caps")
    return InfeasibleError("memory caps: every device|edge|cloud split breaks a node's memory cap")


def solve_hpa(cost: CostModel, *, pins: Mapping[str, "Tier | str"],
              layout: Layout | None = None, tiles: bool = True, refine: bool = True,
              max_segments: int = 8) -> Plan:
    """D3's heuristic horizontal partition with vertical separation on the edge.

    Steps: (1) order the layers topologically so that cuts cross few bytes (:func:`build_layout`);
    (2) score every device|edge cut ``i`` and edge|cloud cut ``j`` at once from prefix sums
    of layer times and the byte tables, the edge part of each pair using the best set of
    disjoint tiled blocks inside it; pairs breaking a pin or a device/coordinator/cloud
    memory cap are skipped; (3) move single branch layers across a boundary while the
    latency drops and the tiers stay monotone; (4) score the plan with
    :func:`d3opt.plan.score`.

    Parameters
    ----------
    cost : the instance.
    pins : ``{layer: tier}`` layers that must run on a given tier.
    layout : a :class:`Layout` of ``cost.graph`` from :func:`build_layout` (rebuilt when it does
        not fit the graph or the pins).
    tiles : consider vertical separation (tiled blocks) on the edge.
    refine : run the local refinement of step (3).
    max_segments : longest candidate block, in segments between cut points.

    Raises
    ------
    InfeasibleError
        When no cut pair honours the pins and memory caps.

    Examples
    --------
    >>> from d3opt.graph import Layer, LayerGraph
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> g = LayerGraph([Layer("x", "input", out_bytes=1000),
    ...                 Layer("f", "linear", flops=1e9, out_bytes=10)], [("x", "f")])
    >>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e11)], Node("c", flops=1e12))
    >>> cost = CostModel(g, nodes, Network(Link(1e7), Link(1e8), Link(1e3)))
    >>> solve_hpa(cost, pins={"f": "edge"}).assignment["f"]
    <Tier.EDGE: 1>
    """
    start = time.perf_counter()
    pins = {k: Tier.parse(v) for k, v in pins.items()}
    lay = _layout_for(cost, layout, pins, max_segments)
    tab = _tables(cost, lay)
    every = np.arange(len(lay.blocks)) if tiles and cost.nodes.K >= 2 else np.arange(0)
    sep = _separation(cost, lay, every)
    if every.size:
        lay._memo["separation"] = (_edge_key(cost), sep)
    tiling, chosen = sep.tiling, sep.chosen
    I, J = np.arange(lay.n + 1)[:, None], np.arange(lay.n + 1)[None, :]
    saving = _edge_savings(lay, sep.bounds, sep.table, I, J)
    latency = _pair_latency(cost, lay, tab, I, J, saving)
    latency = np.where(_pair_mask(cost, lay, pins, I, J), latency, _INF)
    if not np.isfinite(latency).any():
        raise _no_pair(pins)
    i, j = (int(x) for x in np.unravel_index(np.argmin(latency), latency.shape))
    picked = _fit_tiles(cost, lay, tiling, _select_blocks(lay, tiling, chosen, i, j))
    return _finish(cost, lay, tab, _tier_array(lay, i, j), picked, tiling, pins,
                   refine=refine, backend="hpa", start=start,
                   message=f"cuts at positions {i} and {j} of {lay.n}; {len(picked)} tiled blocks")


def _tiers_of(lay: Layout, assignment: Mapping[str, Tier]) -> np.ndarray:
    """A plan's tiers (its ``assignment`` holds :class:`Tier` values) in layout order."""
    try:
        return np.fromiter(map(assignment.__getitem__, lay.order), dtype=np.intp,
                           count=lay.n)
    except KeyError as err:
        raise PlanError(f"the plan assigns no tier to layer {err.args[0]!r}") from None


def _adjust_pairs(lay: Layout, near_i: np.ndarray, near_j: np.ndarray):
    """The cut pairs :func:`adjust` scores, as two flat arrays ``(I, J)``.

    Every pair of the windows ``near_i x near_j``; one cut anywhere among the graph's cut
    points (:attr:`Layout.anchors`) with the other in its window; and the two-tier splits at a
    cut point ``a`` (device|cloud ``(a, a)``, device|edge ``(a, n)``, edge|cloud with only the
    inputs on the device),
    so a deep change reaches a far simple plan (all on the device, say) in one step. That is
    ``O(w^2 + w c + c)`` pairs for windows of ``w`` positions and ``c`` cut points.
    """
    n, first = lay.n, lay.n_inputs
    far_i, far_j = lay.anchors[lay.anchors >= first], lay.anchors
    grids = [(near_i, near_j), (far_i, near_j), (near_i, far_j)]
    I = [np.repeat(a, len(b)) for a, b in grids]
    J = [np.tile(b, len(a)) for a, b in grids]
    I += [far_i, far_i, np.full(len(far_j), first)]
    J += [far_i, np.full(len(far_i), n), far_j]
    keys = np.unique(np.concatenate(I) * (n + 1) + np.concatenate(J))
    return keys // (n + 1), keys % (n + 1)


def adjust(plan: Plan, cost: CostModel, *, pins: Mapping[str, "Tier | str"] | None = None,
           window: int = 6, layout: Layout | None = None, refine: bool = True) -> Plan:
    """Partially adjust ``plan`` to new conditions (D3's run-time adjustment).

    Only cut pairs within ``window`` positions of the plan's current cuts, one cut moved to
    a cut point of the graph with the other in its window, and the two-tier splits at cut
    points are scored under the new :class:`~d3opt.cost.CostModel` (:func:`_adjust_pairs`).
    The separation of the last full solve is reused while the edge conditions hold; else
    only the plan's own tiled blocks plus the candidate blocks touching the windows are
    re-timed (the edge layers that did not move keep their separation; its tile counts are
    re-chosen). The result is never worse than ``plan`` itself under the new conditions: when
    no scored pair beats it, ``plan`` is returned re-scored.

    Parameters
    ----------
    plan : the current plan (any method's, on ``cost.graph``).
    cost : the instance under the new conditions.
    pins : extra pins, on top of ``plan.pins``.
    window : how far (in layer positions of the HPA order) each cut may move.
    layout : a :class:`Layout` of ``cost.graph`` (see :func:`build_layout`) to reuse.
    refine : run HPA's local refinement on the result.

    Raises
    ------
    InfeasibleError
        When neither the plan nor any nearby pair honours the pins and memory caps.

    Examples
    --------
    >>> from d3opt.graph import Layer, LayerGraph
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> g = LayerGraph([Layer("x", "input", out_bytes=100_000),
    ...                 Layer("a", "conv", flops=1e8, out_bytes=1_000),
    ...                 Layer("b", "linear", flops=4e10, out_bytes=4)], [("x", "a"), ("a", "b")])
    >>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
    >>> plan = solve_hpa(CostModel(g, nodes, Network(Link(1e5), Link(1e8), Link(1e6))), pins={})
    >>> slow_backbone = CostModel(g, nodes, Network(Link(1e5), Link(1e8), Link(1e2)))
    >>> [adjust(plan, slow_backbone).assignment[n].name for n in g.order]
    ['DEVICE', 'DEVICE', 'EDGE']
    """
    start = time.perf_counter()
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    all_pins = dict(plan.pins)
    all_pins.update({k: Tier.parse(v) for k, v in (pins or {}).items()})
    lay = _layout_for(cost, layout, all_pins, layout.max_segments if layout else 8)
    tab = _tables(cost, lay)
    old = _tiers_of(lay, plan.assignment)
    n = lay.n
    i0 = int(np.argmax(old >= 1)) if (old >= 1).any() else n
    j0 = int(np.argmax(old >= 2)) if (old >= 2).any() else n
    near_i = np.arange(max(lay.n_inputs, i0 - window), min(n, i0 + window) + 1)
    near_j = np.arange(max(0, j0 - window), min(n, j0 + window) + 1)
    cuts_i, cuts_j = _adjust_pairs(lay, near_i, near_j)

    span_of = lay.block_of
    kept = np.array([span_of[tb.layers] for tb in plan.tiles if tb.layers in span_of],
                    dtype=np.intp)
    starts, stops = lay.block_span[:, 0], lay.block_span[:, 1]
    near = (((starts < near_i[-1]) & (stops > near_i[0]))
            | ((starts < near_j[-1]) & (stops > near_j[0])))
    sep = _remembered(cost, lay) if cost.nodes.K >= 2 else None
    if sep is None:  # edge conditions changed: re-time the blocks near the cuts only
        sep = _separation(cost, lay, np.union1d(np.flatnonzero(near), kept)
                          if cost.nodes.K >= 2 else np.arange(0))
    timed, tiling, chosen, which = sep.timed, sep.tiling, sep.chosen, sep.timed.which
    saving = _edge_savings(lay, sep.bounds, sep.table, cuts_i, cuts_j)
    latency = _pair_latency(cost, lay, tab, cuts_i, cuts_j, saving)
    latency = np.where(_pair_mask(cost, lay, all_pins, cuts_i, cuts_j), latency, _INF)

    # The current plan under the new conditions (its own tile counts), for the guarantee.
    current = _INF
    ks = np.array([tb.k for tb in plan.tiles if tb.layers in span_of], dtype=np.intp)
    if len(kept) < len(plan.tiles) or ks.max(initial=1) > cost.nodes.K:
        # Tiles HPA does not know: score them the slow way.
        try:
            current = evaluate_assignment(cost, plan.assignment, plan.tiles, pins=all_pins).latency
        except PlanError:
            current = _INF
    elif _memory_ok(cost, lay, old) and all(old[lay.position[k]] == v
                                           for k, v in all_pins.items()):
        tiled = np.zeros(n, dtype=bool)
        tile_time = 0.0
        if len(kept):
            rows = np.searchsorted(which, kept)
            fits = np.hstack([np.ones((len(kept), 1), dtype=bool),
                              _fits(cost, lay, timed)[rows]])
            tile_time = float(np.where(fits, timed.time[rows], _INF)[np.arange(len(kept)),
                                                                       ks - 1].sum())
            for b in kept:
                tiled[starts[b]:stops[b]] = True
        if np.isfinite(tile_time):
            current = _fast_latency(cost, lay, tab, old, tiled, tile_time)
    if not np.isfinite(latency).any() and not np.isfinite(current):
        raise _no_pair(all_pins)
    best = float(latency.min()) if np.isfinite(latency).any() else _INF
    if best < current - 1e-9 * max(1.0, abs(current)):
        best_pair = int(np.argmin(latency))
        i, j = int(cuts_i[best_pair]), int(cuts_j[best_pair])
        picked = _fit_tiles(cost, lay, tiling, _select_blocks(lay, tiling, chosen, i, j))
        moved = _finish(cost, lay, tab, _tier_array(lay, i, j), picked, tiling, all_pins,
                        refine=refine, backend="hpa.adjust", start=start,
                        message=f"cuts moved from ({i0}, {j0}) to ({i}, {j}) of {n}; "
                                f"{len(picked)} tiled blocks")
        if not np.isfinite(current) or moved.latency <= current:
            return moved
    try:
        return _scored_plan(cost, plan.assignment, plan.tiles, all_pins, backend="hpa.adjust",
                            start=start,
                            message=f"kept cuts ({i0}, {j0}) of {n}: no nearby pair is better")
    except PlanError as err:
        raise InfeasibleError(f"memory caps: adjust found no plan: {err}") from None
