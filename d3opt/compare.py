"""Compare solvers on one instance: latency, stages, backbone bytes, solve time, gap.

:func:`compare` builds one :class:`~d3opt.cost.CostModel` and runs each method on it through
:func:`d3opt.solve.solve_cost` (so every latency is re-scored by the one evaluator). The
result is a frozen :class:`Comparison`; :meth:`Comparison.table` renders it as text.

Examples
--------
>>> import d3opt
>>> g = d3opt.LayerGraph([d3opt.Layer("x", "input", out_bytes=100_000),
...                       d3opt.Layer("a", "conv", flops=1e8, out_bytes=1_000),
...                       d3opt.Layer("b", "linear", flops=4e10, out_bytes=4)],
...                      [("x", "a"), ("a", "b")])
>>> nodes = d3opt.Nodes(d3opt.Node("d", flops=1e9), [d3opt.Node("e", flops=1e10)],
...                     d3opt.Node("c", flops=1e12))
>>> net = d3opt.Network(d3opt.Link(1e5), d3opt.Link(1e8), d3opt.Link(1e6))
>>> result = compare(g, nodes, net, methods=("device", "cloud", "hpa"))
>>> result.best().method, round(result.row("device").latency, 3)
('hpa', 40.1)
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from d3opt.cost import CostModel
from d3opt.errors import D3optError
from d3opt.graph import LayerGraph
from d3opt.plan import STAGES, Plan
from d3opt.solve import check_pins, solve_cost
from d3opt.solvers import get_solver
from d3opt.system import Network, Nodes, Tier

#: The methods :func:`compare` runs by default, in table order.
DEFAULT_METHODS = ("device", "edge", "cloud", "neurosurgeon", "dads", "hpa", "milp")
#: Stage abbreviations used as table headers.
_STAGE_HEADERS = {"device": "dev", "device->edge": "d>e", "edge": "edge", "edge->cloud": "e>c",
                  "device->cloud": "d>c", "cloud": "cloud", "return": "ret"}


@dataclass(frozen=True)
class Row:
    """One method's result.

    ``latency``, ``breakdown`` (seconds per stage) and ``backbone_bytes`` are None and
    ``error`` says why when the method found no plan (e.g. infeasible pins). ``gap`` is
    ``latency / milp_latency - 1`` when the MILP ran and found a plan, else None.
    """

    method: str
    latency: float | None
    breakdown: Mapping[str, float] | None
    backbone_bytes: int | None
    solve_time: float
    gap: float | None
    plan: Plan | None
    error: str = ""


@dataclass(frozen=True)
class Comparison:
    """The rows of :func:`compare`, in the order the methods were given."""

    rows: tuple[Row, ...]
    milp_status: str | None = None
    label: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)

    def row(self, method: str) -> Row:
        """The row of ``method`` (KeyError naming the methods run otherwise)."""
        for row in self.rows:
            if row.method == method:
                return row
        raise KeyError(f"method {method!r} was not compared; rows: {[r.method for r in self.rows]}")

    def best(self) -> Row:
        """The row of least latency among the methods that found a plan."""
        found = [r for r in self.rows if r.latency is not None]
        if not found:
            raise ValueError("no method found a plan")
        return min(found, key=lambda r: r.latency)

    def table(self) -> str:
        """The comparison as aligned text: milliseconds, kilobytes and percent.

        Stage columns that are zero for every method are left out.
        """
        from d3opt.report import format_table

        stages = [s for s in STAGES
                  if any(r.breakdown and r.breakdown[s] > 0 for r in self.rows)]
        headers = ["method", "latency ms", *(_STAGE_HEADERS[s] for s in stages),
                   "backbone KB", "solve ms", "gap %"]
        rows = []
        for r in self.rows:
            if r.latency is None:
                rows.append([r.method, "-", *("-" for _ in stages), "-",
                             f"{r.solve_time * 1e3:.1f}", r.error])
                continue
            gap = "" if r.gap is None else f"{100 * r.gap:.2f}"
            rows.append([r.method, f"{r.latency * 1e3:.3f}",
                         *(f"{r.breakdown[s] * 1e3:.3f}" for s in stages),
                         f"{r.backbone_bytes / 1e3:.1f}", f"{r.solve_time * 1e3:.1f}", gap])
        numeric = [False] + [True] * (len(headers) - 2) + [False]
        text = format_table(headers, rows, numeric=numeric)
        notes = []
        if self.label:
            notes.append(self.label)
        if self.milp_status is not None and self.milp_status != "optimal":
            notes.append(f"milp status: {self.milp_status} (gap relative to its best plan)")
        return "\n".join([*notes, text]) if notes else text


def _accepted(method: str, options: Mapping[str, object]) -> dict[str, object]:
    """The subset of ``options`` that ``method``'s solver takes."""
    parameters = inspect.signature(get_solver(method)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in parameters}


def compare(graph: LayerGraph, nodes: Nodes, network: Network, *,
            methods: Sequence[str] = DEFAULT_METHODS,
            pins: Mapping[str, "Tier | str"] | None = None, label: str = "",
            **options) -> Comparison:
    """Run ``methods`` on one instance and tabulate them.

    Parameters
    ----------
    graph, nodes, network : the instance.
    methods : method names (see :func:`d3opt.solvers.methods`).
    pins : ``{layer: tier}`` passed to every method.
    label : a title line for :meth:`Comparison.table`.
    options : solver options; each method gets those its solver accepts (e.g.
        ``time_limit=`` reaches the MILP only).

    Returns
    -------
    Comparison
        One :class:`Row` per method. A method that raises a d3opt error (infeasible pins or
        memory caps, a backend failure) gets a row with ``error`` set instead of failing the
        comparison; unknown method names raise ValueError before anything runs.
    """
    for method in methods:
        get_solver(method)
    pins = check_pins(graph, pins)
    cost = CostModel(graph, nodes, network)
    results = []
    for method in methods:
        start = time.perf_counter()
        try:
            plan = solve_cost(cost, method, pins=pins, **_accepted(method, options))
            error = ""
        except D3optError as err:
            plan, error = None, " ".join(str(err).split())
        results.append((method, plan, time.perf_counter() - start, error))
    milp = next((p for m, p, _, _ in results if m == "milp" and p is not None), None)
    rows = []
    for method, plan, seconds, error in results:
        if plan is None:
            rows.append(Row(method, None, None, None, seconds, None, None, error))
            continue
        gap = None
        if milp is not None:
            gap = plan.latency / milp.latency - 1 if milp.latency > 0 else 0.0
        rows.append(Row(method, plan.latency, MappingProxyType(dict(plan.breakdown)),
                        plan.backbone_bytes, seconds, gap, plan))
    status = milp.info.status if milp is not None and milp.info is not None else None
    return Comparison(rows=tuple(rows), milp_status=status, label=label)


__all__ = ["compare", "Comparison", "Row", "DEFAULT_METHODS"]
