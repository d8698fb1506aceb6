"""The front door: :func:`solve` any instance with any method, re-scored independently.

>>> import networkx as nx, d3opt
>>> G = nx.DiGraph()
>>> G.add_node("x", op="input", out_bytes=1000); G.add_node("f", op="linear", flops=1e9, out_bytes=4)
>>> G.add_edge("x", "f")
>>> g = d3opt.LayerGraph.from_networkx(G)
>>> nodes = d3opt.Nodes(d3opt.Node("d", flops=1e9), [d3opt.Node("e", flops=1e10)],
...                     d3opt.Node("c", flops=1e12))
>>> net = d3opt.Network(d3opt.Link(1e6), d3opt.Link(1e8), d3opt.Link(1e7))
>>> d3opt.solve(g, nodes, net, method="cloud").assignment["f"]
<Tier.CLOUD: 2>
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from d3opt.cost import CostModel
from d3opt.errors import PlanError, SolverError
from d3opt.graph import LayerGraph
from d3opt.plan import Plan, evaluate_assignment
from d3opt.solvers import get_solver
from d3opt.system import Network, Nodes, Tier


def check_pins(graph: LayerGraph, pins: Mapping[str, "Tier | str"] | None) -> dict[str, Tier]:
    """Pins as ``{layer: Tier}``, rejecting unknown layers and inputs pinned off the device."""
    checked = {}
    for name, tier in (pins or {}).items():
        if name not in graph:
            raise PlanError(f"pin names unknown layer {name!r}")
        checked[name] = Tier.parse(tier)
        if graph[name].op == "input" and checked[name] != Tier.DEVICE:
            raise PlanError(f"input layer {name!r} cannot be pinned off the device")
    return checked


def solve(graph: LayerGraph, nodes: Nodes, network: Network, method: str = "milp", *,
          pins: Mapping[str, "Tier | str"] | None = None, **options) -> Plan:
    """Find a plan for ``graph`` on ``nodes`` and ``network`` with ``method``.

    Parameters
    ----------
    method : a name from :func:`d3opt.solvers.methods` (``"milp"``, ``"hpa"``, ``"dads"``,
        ``"neurosurgeon"``, ``"device"``, ``"edge"``, ``"cloud"``).
    pins : ``{layer: tier}`` layers that must run on a given tier.
    options : passed to the solver (e.g. ``time_limit=``, ``solver=`` for the MILP).

    Returns
    -------
    Plan
        Scored by :func:`d3opt.plan.evaluate_assignment`; ``plan.info`` says how it was found.

    Raises
    ------
    InfeasibleError
        When no plan satisfies the pins and memory caps (the message names the family).
    SolverError
        When the solver's own latency disagrees with the independent evaluation.
    """
    cost = CostModel(graph, nodes, network)
    return solve_cost(cost, method, pins=pins, **options)


def solve_cost(cost: CostModel, method: str = "milp", *,
               pins: Mapping[str, "Tier | str"] | None = None, **options) -> Plan:
    """:func:`solve` on a prebuilt :class:`~d3opt.cost.CostModel` (reuse it across methods)."""
    pins = check_pins(cost.graph, pins)
    plan = get_solver(method)(cost, pins=pins, **options)
    check = evaluate_assignment(cost, plan.assignment, plan.tiles, pins=pins)
    if plan.evaluation is None or not math.isclose(
        check.latency, plan.latency, rel_tol=1e-9, abs_tol=1e-12
    ):
        raise SolverError(
            f"method {method!r} reported latency "
            f"{None if plan.evaluation is None else plan.latency!r} but evaluate() gives "
            f"{check.latency!r}"
        )
    return plan
