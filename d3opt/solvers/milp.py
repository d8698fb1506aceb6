"""The exact MILP: the optimal three-tier plan with tiled edge blocks, with a certified bound.

The model (formulations/three_tier_tiles.md) reproduces :func:`d3opt.plan.evaluate_assignment`
exactly: every returned plan is scored by it, and the solver's objective must agree with that
score (a mismatch raises :class:`~d3opt.errors.SolverError`). :class:`MilpModel` is built
once and can be re-costed in place (new link bandwidths/latencies, node speeds) and re-solved
with a hint and a time budget -- the base of the incremental re-solver.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> from d3opt.cost import CostModel
>>> g = LayerGraph([Layer("x", "input", out_bytes=1000), Layer("f", "linear", flops=4e9,
...                 out_bytes=4)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
>>> cost = CostModel(g, nodes, Network(Link(1e6), Link(1e8), Link(1e7)))
>>> plan = solve_milp(cost, pins={})
>>> plan.assignment["f"], plan.info.status, round(plan.latency, 6)
(<Tier.CLOUD: 2>, 'optimal', 0.005104)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from d3opt.cost import CostModel
from d3opt.errors import InfeasibleError, PlanError, SolverError
from d3opt.graph import LayerGraph
from d3opt.plan import Evaluation, Plan, SolveInfo, evaluate_assignment
from d3opt.solve import check_pins
from d3opt.solvers.milp_backends import BACKENDS, make_backend, model_proto, pulp_problem
from d3opt.solvers.milp_model import OBJECTIVE_UNIT, Coefficients, MilpFormulation
from d3opt.system import Link, Network, Nodes, Tier

#: Relative tolerance between the solver's objective and the evaluated latency.
OBJECTIVE_RTOL = 1e-6


class MilpModel:
    """The MILP of one instance, built once, re-costed in place and solved many times.

    Parameters
    ----------
    cost : the instance.
    pins : ``{layer: tier}`` layers that must run on a given tier.
    solver : ``"highs"`` (OR-Tools MathOpt HiGHS, default), ``"scip"`` (MathOpt SCIP) or
        ``"cbc"`` (PuLP's bundled CBC).
    tiles : also choose tiled edge blocks (needs ``K >= 2``).
    max_segments : longest candidate block, in cut-point segments
        (:func:`d3opt.tiling.candidate_blocks`).

    Raises
    ------
    InfeasibleError
        When pins contradict each other or pinned layers alone break a memory cap.

    Notes
    -----
    :meth:`update` (and its shortcuts :meth:`set_link`, :meth:`set_node`) re-cost the model
    for a new :class:`~d3opt.cost.CostModel` of the same graph: objective coefficients,
    dominance bounds of the tile variables and the memory rows are recomputed and only the
    numbers that changed are pushed into the solver model (MathOpt backends; CBC rebuilds its
    PuLP problem). A change of structure -- another graph, other node names, a direct
    device-cloud link appearing or vanishing, a memory cap added or removed -- rebuilds the
    model transparently. Block costs are cached while edge-node times and the LAN stay put.

    Examples
    --------
    >>> from d3opt.graph import Layer, LayerGraph
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> g = LayerGraph([Layer("x", "input", out_bytes=10_000), Layer("f", "linear",
    ...                 flops=4e9, out_bytes=4)], [("x", "f")])
    >>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
    >>> model = MilpModel(CostModel(g, nodes, Network(Link(1e6), Link(1e8), Link(1e7))))
    >>> model.solve().assignment["f"]
    <Tier.CLOUD: 2>
    >>> model.set_link("edge_cloud", Link(1e3))     # the backbone collapses
    >>> model.solve(hint=None).assignment["f"]
    <Tier.EDGE: 1>
    """

    def __init__(self, cost: CostModel, *, pins: Mapping[str, "Tier | str"] | None = None,
                 solver: str = "highs", tiles: bool = True, max_segments: int = 8):
        if solver not in BACKENDS:
            raise ValueError(f"unknown MILP solver {solver!r}; choose one of {sorted(BACKENDS)}")
        start = time.perf_counter()
        self.solver = solver
        self.pins = check_pins(cost.graph, pins)
        self._tiles, self._max_segments = tiles, max_segments
        self._backend = make_backend(solver)
        self._load(cost)
        self.build_time = time.perf_counter() - start

    def _load(self, cost: CostModel) -> None:
        self.cost = cost
        self.formulation = MilpFormulation(cost, pins=self.pins, tiles=self._tiles,
                                           max_segments=self._max_segments)
        self.coefficients: Coefficients = self.formulation.coefficients(cost)
        self._backend.load(self.formulation, self.coefficients)

    @property
    def num_variables(self) -> int:
        """Number of variables of the model."""
        return self.formulation.num_variables

    @property
    def num_constraints(self) -> int:
        """Number of linear constraints of the model."""
        return self.formulation.num_constraints

    # -- re-costing -------------------------------------------------------------------------
    def update(self, cost: CostModel) -> None:
        """Re-cost the model for ``cost`` (same graph), in place where the structure allows."""
        if not self.formulation.accepts(cost):
            self._load(cost)
            return
        self.formulation.check_forced_memory(cost)
        coefficients = self.formulation.coefficients(cost)
        self._backend.update(self.formulation, coefficients)
        self.cost, self.coefficients = cost, coefficients

    def set_link(self, name: str, link: Link | None) -> None:
        """Replace link ``name`` (``"device_edge"``, ``"edge_edge"``, ``"edge_cloud"``,
        ``"device_cloud"``) and re-cost."""
        cost = self.cost
        self.update(CostModel(cost.graph, cost.nodes, cost.network.with_link(name, link)))

    def set_node(self, name: str, **changes) -> None:
        """Change node ``name`` (e.g. ``flops=``, ``overhead=``, ``memory=``) and re-cost."""
        cost = self.cost
        self.update(CostModel(cost.graph, cost.nodes.replace_node(name, **changes), cost.network))

    # -- solving ----------------------------------------------------------------------------
    def solve(self, *, time_limit: float | None = None, gap: float | None = None,
              hint: Plan | None = None, presolve: bool | None = None) -> Plan:
        """Solve and return the best plan, scored by :func:`~d3opt.plan.evaluate_assignment`.

        Parameters
        ----------
        time_limit : seconds the backend may run (None: until proven optimal).
        gap : relative gap at which the backend may stop (None: 0, prove optimality).
        hint : a plan to start from (warm start); it is also returned if the backend finds
            nothing better before the time limit.
        presolve : the backend's presolve on or off (None: off for HiGHS, whose MIP
            presolve is slow on this model, the solver's default otherwise).

        Returns
        -------
        Plan
            ``plan.info.status`` is ``"optimal"``, ``"feasible"`` (stopped at ``gap``) or
            ``"timed_out"``, with the backend's bound and the gap of the returned plan.

        Raises
        ------
        InfeasibleError
            No plan satisfies the memory caps (with the pins).
        SolverError
            No plan within the time limit, or the solver's objective disagrees with the
            evaluated latency.
        """
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {time_limit!r}")
        if gap is not None and not gap >= 0:
            raise ValueError(f"gap must be >= 0, got {gap!r}")
        start = time.perf_counter()
        form, cost = self.formulation, self.cost
        hinted = self._score_hint(hint)
        raw = self._backend.solve(
            time_limit=time_limit, gap=0.0 if gap is None else float(gap),
            hint=None if hint is None else form.encode(hint, self.coefficients),
            presolve=presolve)
        wall = time.perf_counter() - start
        bound = None if raw.bound is None else raw.bound * OBJECTIVE_UNIT
        outcome = raw.outcome
        if outcome == "infeasible" and time_limit is not None and not self.formulation.capped:
            # Without caps the all-device plan is always feasible: CBC says "Infeasible" when
            # its time limit hits before it has any solution.
            outcome = "no_solution"
        if outcome == "infeasible":
            self._raise_infeasible(raw.message)
        if outcome == "no_solution":
            if hinted is None:
                raise SolverError(
                    f"MILP ({self.solver}): no plan found within time_limit={time_limit} s; "
                    "raise the time limit or pass a hint")
            return self._plan(hinted[0], hinted[1], "timed_out", None, bound, wall,
                              raw.message + "; returning the hint")
        assignment, tiles = form.decode(raw.values)
        try:
            evaluation = evaluate_assignment(cost, assignment, tiles, pins=self.pins)
        except PlanError as err:
            raise SolverError(f"MILP ({self.solver}) returned an invalid plan: {err}") from err
        self._check_objective(raw.objective * OBJECTIVE_UNIT, evaluation.latency,
                              proven=raw.outcome == "optimal")
        chosen = (assignment, tiles, evaluation)
        if hinted is not None and hinted[2].latency < evaluation.latency:
            chosen = hinted
        status = {"optimal": "optimal", "feasible": "feasible", "time_limit": "timed_out"}[raw.outcome]
        if status == "optimal" and gap:
            measured = _gap(chosen[2].latency, bound)
            status = "optimal" if measured is not None and measured <= 1e-9 else "feasible"
        return self._plan(chosen[0], chosen[1], status, chosen[2], bound, wall, raw.message)

    def _score_hint(self, hint: Plan | None):
        if hint is None:
            return None
        try:
            evaluation = evaluate_assignment(self.cost, hint.assignment, hint.tiles, pins=self.pins)
        except PlanError:
            return None
        return dict(hint.assignment), tuple(hint.tiles), evaluation

    def _check_objective(self, objective: float, latency: float, *, proven: bool) -> None:
        # A crossing or message variable may sit above its indicator in a non-optimal
        # incumbent, so there the evaluated latency may only be lower.
        close = math.isclose(objective, latency, rel_tol=OBJECTIVE_RTOL, abs_tol=1e-9)
        if close or (not proven and latency <= objective):
            return
        raise SolverError(
            f"MILP ({self.solver}) objective {objective!r} disagrees with the evaluated "
            f"latency {latency!r} of its plan")

    def _raise_infeasible(self, message: str) -> None:
        capped = self.formulation.capped
        if not capped:
            raise SolverError(
                f"MILP ({self.solver}) reports infeasibility ({message}) although the pins are "
                "consistent and no node has a memory cap")
        raise InfeasibleError(
            f"memory caps: no plan keeps the weights within the caps of nodes {list(capped)}"
            + (f" with pins {sorted(self.pins)}" if self.pins else ""))

    def _plan(self, assignment, tiles, status: str, evaluation: Evaluation | None,
              bound: float | None, wall: float, message: str) -> Plan:
        if evaluation is None:
            evaluation = evaluate_assignment(self.cost, assignment, tiles, pins=self.pins)
        info = SolveInfo(backend=self.solver, status=status, objective=evaluation.latency,
                         bound=bound, gap=_gap(evaluation.latency, bound), wall_time=wall,
                         message=message)
        return Plan(assignment, tiles=tiles, pins=self.pins, method="milp", info=info,
                    evaluation=evaluation)

    # -- export -----------------------------------------------------------------------------
    def export(self, path: "str | Path") -> Path:
        """Write the model as MPS (``.mps``) or CPLEX LP (``.lp``) text; returns the path."""
        return _write(self.formulation, self.coefficients, Path(path))


def _gap(objective: float, bound: float | None) -> float | None:
    if bound is None:
        return None
    if objective <= 0:
        return 0.0 if bound >= objective - 1e-12 else None
    return max(0.0, (objective - bound) / objective)


def _write(form: MilpFormulation, coefficients: Coefficients, path: Path) -> Path:
    suffix = path.suffix.lower()
    if suffix == ".mps":
        from ortools.math_opt.io.python import mps_converter

        path.write_text(mps_converter.model_proto_to_mps(model_proto(form, coefficients)))
    elif suffix == ".lp":
        problem, _ = pulp_problem(form, coefficients)
        problem.writeLP(str(path))
    else:
        raise ValueError(f"export path must end in .mps or .lp, got {path.name!r}")
    return path


def solve_milp(cost: CostModel, *, pins: Mapping[str, "Tier | str"], solver: str = "highs",
               time_limit: float | None = None, gap: float | None = None,
               hint: Plan | None = None, max_segments: int = 8, tiles: bool = True,
               presolve: bool | None = None) -> Plan:
    """The optimal plan (or the best found within ``time_limit``) of the three-tier MILP.

    Parameters
    ----------
    cost : the instance.
    pins : ``{layer: tier}`` layers that must run on a given tier.
    solver : ``"highs"`` (default), ``"scip"`` or ``"cbc"``.
    time_limit : seconds the backend may run (None: no limit).
    gap : relative gap at which to stop (None: prove optimality).
    hint : a plan to warm-start from.
    max_segments : longest candidate tiled block, in cut-point segments.
    tiles : also choose tiled edge blocks.
    presolve : the backend's presolve on/off (None: see :meth:`MilpModel.solve`).

    Returns
    -------
    Plan
        Scored by :func:`~d3opt.plan.evaluate_assignment`; ``plan.info`` holds backend,
        status (``"optimal"``, ``"feasible"``, ``"timed_out"``), objective, bound, gap and
        wall time (model build included).

    Examples
    --------
    >>> import d3opt
    >>> from d3opt.graph import Layer, LayerGraph
    >>> g = LayerGraph([Layer("x", "input", out_bytes=10**6), Layer("f", "linear",
    ...                 flops=1e9, out_bytes=4)], [("x", "f")])
    >>> nodes = d3opt.Nodes(d3opt.Node("d", flops=1e10), [d3opt.Node("e", flops=1e11)],
    ...                     d3opt.Node("c", flops=1e12))
    >>> net = d3opt.Network(d3opt.Link(1e6), d3opt.Link(1e8), d3opt.Link(1e6))
    >>> d3opt.solve(g, nodes, net, method="milp", solver="cbc").layers_on("device")
    ('x', 'f')
    """
    start = time.perf_counter()
    model = MilpModel(cost, pins=pins, solver=solver, tiles=tiles, max_segments=max_segments)
    plan = model.solve(time_limit=time_limit, gap=gap, hint=hint, presolve=presolve)
    info = replace(plan.info, wall_time=time.perf_counter() - start,
                   message=f"{plan.info.message}; build {model.build_time:.3g} s")
    return replace(plan, info=info)


def export_model(graph: LayerGraph, nodes: Nodes, network: Network, path: "str | Path", *,
                 pins: Mapping[str, "Tier | str"] | None = None, tiles: bool = True,
                 max_segments: int = 8) -> Path:
    """Write the MILP of an instance to ``path``: MPS for ``.mps``, CPLEX LP for ``.lp``.

    Variable and row names follow formulations/three_tier_tiles.md (``x_<layer
    index>_<tier letter>``, ``c_<layer>_<tiers>``, ``w_<link use>``, ``y_<block>_<k>``;
    rows ``<family>_<n>``).

    Examples
    --------
    >>> import tempfile, pathlib, d3opt
    >>> from d3opt.graph import Layer, LayerGraph
    >>> g = LayerGraph([Layer("x", "input", out_bytes=8), Layer("f", "linear", flops=1e9,
    ...                 out_bytes=4)], [("x", "f")])
    >>> nodes = d3opt.Nodes(d3opt.Node("d", flops=1e9), [d3opt.Node("e", flops=1e10)],
    ...                     d3opt.Node("c", flops=1e12))
    >>> net = d3opt.Network(d3opt.Link(1e6), d3opt.Link(1e8), d3opt.Link(1e7))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = d3opt.export_model(g, nodes, net, pathlib.Path(folder) / "m.mps")
    ...     "ROWS" in path.read_text()
    True
    """
    cost = CostModel(graph, nodes, network)
    form = MilpFormulation(cost, pins=check_pins(graph, pins), tiles=tiles,
                           max_segments=max_segments)
    return _write(form, form.coefficients(cost), Path(path))


__all__ = ["MilpModel", "solve_milp", "export_model", "OBJECTIVE_RTOL"]
