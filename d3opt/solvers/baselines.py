"""Baselines: everything on one tier, Neurosurgeon's best split, DADS's min-cut.

>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> from d3opt.cost import CostModel
>>> g = LayerGraph([Layer("x", "input", out_bytes=8), Layer("f", "linear", flops=1e9,
...                 out_bytes=4)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
>>> cost = CostModel(g, nodes, Network(Link(1e6), Link(1e8), Link(1e7)))
>>> solve_device(cost, pins={}).latency
1.0
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from d3opt.cost import CostModel
from d3opt.errors import InfeasibleError, PlanError
from d3opt.plan import Plan, SolveInfo, score
from d3opt.system import Tier


def _single_tier(cost: CostModel, tier: Tier, pins: Mapping[str, Tier], method: str) -> Plan:
    start = time.perf_counter()
    graph = cost.graph
    assignment = {n: Tier.DEVICE if graph[n].op == "input" else tier for n in graph.order}
    for name, pinned in pins.items():
        if assignment[name] != pinned:
            raise InfeasibleError(
                f"pins: method {method!r} puts every layer on the {tier.name.lower()} but "
                f"{name!r} is pinned to the {pinned.name.lower()}"
            )
    plan = Plan(assignment, pins=pins, method=method)
    try:
        plan = score(plan, cost)
    except PlanError as err:
        raise InfeasibleError(f"memory caps: method {method!r}: {err}") from None
    info = SolveInfo(backend=method, status="heuristic", objective=plan.latency,
                     wall_time=time.perf_counter() - start)
    return Plan(plan.assignment, pins=pins, method=method, info=info, evaluation=plan.evaluation)


def solve_device(cost: CostModel, *, pins: Mapping[str, Tier]) -> Plan:
    """Every layer on the device (no offloading)."""
    return _single_tier(cost, Tier.DEVICE, pins, "device")


def solve_edge(cost: CostModel, *, pins: Mapping[str, Tier]) -> Plan:
    """Every layer but the input on the coordinator edge node."""
    return _single_tier(cost, Tier.EDGE, pins, "edge")


def solve_cloud(cost: CostModel, *, pins: Mapping[str, Tier]) -> Plan:
    """Every layer but the input on the cloud ("just run it in the cloud")."""
    return _single_tier(cost, Tier.CLOUD, pins, "cloud")
