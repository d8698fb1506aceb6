"""Brute force: score every plan of a tiny instance with :func:`~d3opt.plan.evaluate_assignment`.

The reference the exact and heuristic solvers are tested against. It enumerates every
monotone assignment of layers to the allowed tiers (inputs on the device, pins honoured) and,
with ``tiles=True``, every set of disjoint candidate blocks (:func:`d3opt.tiling.candidate_blocks`)
lying wholly on the edge with every tile count ``2..K``; each plan is scored by the one
latency model, and plans that break a memory cap are skipped.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> from d3opt.cost import CostModel
>>> g = LayerGraph([Layer("x", "input", out_bytes=1000), Layer("f", "linear", flops=4e9,
...                 out_bytes=4)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
>>> plan = solve_brute(CostModel(g, nodes, Network(Link(1e6), Link(1e8), Link(1e7))), pins={})
>>> plan.assignment["f"], plan.info.status
(<Tier.CLOUD: 2>, 'optimal')
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence

from d3opt.cost import CostModel
from d3opt.errors import InfeasibleError, PlanError
from d3opt.plan import Plan, SolveInfo, TiledBlock, evaluate_assignment
from d3opt.system import Tier
from d3opt.tiling import Block, candidate_blocks


def monotone_assignments(cost: CostModel, *, pins: Mapping[str, Tier],
                         tiers: Sequence[Tier]) -> Iterator[dict[str, Tier]]:
    """Every assignment to ``tiers`` that never goes back along an edge and honours pins."""
    graph = cost.graph
    order = graph.order
    allowed = sorted(Tier.parse(t) for t in tiers)
    current: dict[str, Tier] = {}

    def options(name: str) -> list[Tier]:
        if graph[name].op == "input":
            choices = [Tier.DEVICE]
        elif name in pins:
            choices = [pins[name]]
        else:
            choices = allowed
        floor = max((current[p] for p in graph.preds(name)), default=Tier.DEVICE)
        return [t for t in choices if t >= floor]

    def walk(i: int) -> Iterator[dict[str, Tier]]:
        if i == len(order):
            yield dict(current)
            return
        for tier in options(order[i]):
            current[order[i]] = tier
            yield from walk(i + 1)
        current.pop(order[i], None)

    return walk(0)


def tile_selections(blocks: Sequence[Block], K: int) -> list[tuple[TiledBlock, ...]]:
    """Every set of pairwise disjoint blocks, each with a tile count in ``2..K`` (and none)."""
    selections: list[tuple[TiledBlock, ...]] = []

    def walk(start: int, used: frozenset, chosen: tuple[TiledBlock, ...]) -> None:
        selections.append(chosen)
        for j in range(start, len(blocks)):
            members = frozenset(blocks[j].layers)
            if members & used:
                continue
            for k in range(2, K + 1):
                walk(j + 1, used | members, chosen + (TiledBlock(blocks[j].layers, k),))

    walk(0, frozenset(), ())
    return selections


def solve_brute(cost: CostModel, *, pins: Mapping[str, Tier],
                tiers: Sequence[Tier] = (Tier.DEVICE, Tier.EDGE, Tier.CLOUD),
                tiles: bool = True, max_layers: int = 12, max_segments: int = 8) -> Plan:
    """The optimal plan by exhaustive enumeration (only for tiny graphs).

    Parameters
    ----------
    tiers : tiers layers other than inputs may use (e.g. ``(DEVICE, EDGE)`` for two tiers).
    tiles : also enumerate tiled blocks on the edge.
    max_layers : refuse larger graphs (ValueError) instead of running for hours.
    max_segments : passed to :func:`d3opt.tiling.candidate_blocks`.
    """
    start = time.perf_counter()
    graph = cost.graph
    if len(graph) > max_layers:
        raise ValueError(f"brute force refuses {len(graph)} layers (max_layers={max_layers})")
    selections: list[tuple[TiledBlock, ...]] = [()]
    if tiles and cost.nodes.K >= 2 and Tier.EDGE in tiers:
        selections = tile_selections(candidate_blocks(graph, max_segments=max_segments),
                                     cost.nodes.K)
    best: tuple[float, dict, tuple] | None = None
    for assignment in monotone_assignments(cost, pins=pins, tiers=tiers):
        for chosen in selections:
            if any(assignment[n] != Tier.EDGE for tb in chosen for n in tb.layers):
                continue
            try:
                latency = evaluate_assignment(cost, assignment, chosen, pins=pins).latency
            except PlanError:
                continue
            if best is None or latency < best[0]:
                best = (latency, assignment, chosen)
    if best is None:
        raise InfeasibleError("pins or memory caps: no plan satisfies them (brute force)")
    latency, assignment, chosen = best
    evaluation = evaluate_assignment(cost, assignment, chosen, pins=pins)
    info = SolveInfo(backend="brute", status="optimal", objective=latency, bound=latency,
                     gap=0.0, wall_time=time.perf_counter() - start)
    return Plan(assignment, tiles=chosen, pins=pins, method="brute", info=info,
                evaluation=evaluation)
