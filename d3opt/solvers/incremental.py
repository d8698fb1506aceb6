"""Incremental re-solving: keep a plan up to date while bandwidth, latency and load change.

A :class:`Resolver` holds one instance (graph, nodes, network, pins) and the plan in force.
Each change of conditions -- :meth:`Resolver.update` with a new network or nodes, or the finer
:meth:`~Resolver.set_bandwidth`, :meth:`~Resolver.set_latency` and :meth:`~Resolver.set_speed`
-- re-solves with the chosen strategy and returns an :class:`Update`:

- ``"hpa"``: D3's partial adjustment (:func:`d3opt.solvers.hpa.adjust`) from the plan in force;
- ``"milp"``: when bounds proven by earlier solves along the changed link already show the
  plan in force (or a plan found nearby) optimal (:mod:`d3opt.solvers.parametric`), that plan,
  with no solve (a ``"certificate"`` step); otherwise the MILP built once
  (:class:`d3opt.solvers.milp.MilpModel`), re-costed in place for the changed coefficients and
  warm-started from the plan in force with a time ``budget``;
- ``"auto"``: the fast adjustment first (its plan and time are reported), then the certificate
  or the warm MILP hinted with the adjusted plan, within the budget;
- any other method of :func:`d3opt.solvers.methods` (``"brute"``, ``"dads"``, ...): a cold
  re-solve with that method (a reference for tests and benchmarks).

Plan stability (docs/incremental.md gives the definitions): the best plan found replaces the
plan in force only when ``L_new + migration * M < (1 - hysteresis) * L_cur``, where ``L`` are
latencies under the new conditions (:func:`d3opt.evaluate`) and ``M`` is the time to move the
weights of the layers that change node (:func:`migration_time`). A rejected update (an unknown
link or node, a non-positive or NaN value, a solver failure) raises and leaves the Resolver
as it was.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> g = LayerGraph([Layer("x", "input", out_bytes=1_000_000),
...                 Layer("f", "linear", flops=1e10, out_bytes=4)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e11)], Node("c", flops=1e12))
>>> net = Network(Link(1e8), Link(1e9), Link(1e7))
>>> r = Resolver(g, nodes, net, strategy="brute")
>>> r.plan.assignment["f"].name
'EDGE'
>>> u = r.set_bandwidth("device_edge", 1e5)      # a slow radio: stay on the device
>>> u.plan.assignment["f"].name, u.moved
('DEVICE', ('f',))
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from d3opt.cost import CostModel
from d3opt.errors import ConfigError, PlanError
from d3opt.graph import LayerGraph
from d3opt.plan import Plan, SolveInfo, score
from d3opt.solve import check_pins, solve_cost
from d3opt.solvers import methods
from d3opt.solvers.parametric import ParametricBounds
from d3opt.system import LINKS, Link, Network, Nodes, Tier

#: Strategies that re-solve incrementally; any other solver method re-solves cold.
STRATEGIES = ("auto", "hpa", "milp")
#: Relative slack within which a plan meeting the proven lower bound counts as optimal
#: (far below the MILP's own objective check, :data:`d3opt.solvers.milp.OBJECTIVE_RTOL`).
CERTIFICATE_RTOL = 1e-9
#: Directed uses of the links that weight transfers travel on.
_ROUTES = {
    (Tier.DEVICE, Tier.EDGE): ("device_edge",),
    (Tier.EDGE, Tier.DEVICE): ("device_edge",),
    (Tier.EDGE, Tier.CLOUD): ("edge_cloud",),
    (Tier.CLOUD, Tier.EDGE): ("edge_cloud",),
}


@dataclass(frozen=True)
class Step:
    """One solver pass inside an update: what it found and how long it took.

    ``strategy`` names the pass: ``"hpa"`` (the adjustment), ``"milp"`` (a warm solve),
    ``"certificate"`` (no solve: bounds of earlier solves prove the plan optimal) or a cold
    method. ``latency`` is the :func:`d3opt.evaluate` latency of the plan the pass returned;
    ``bound`` a proven lower bound on the optimum where the pass gives one.
    """

    strategy: str
    latency: float
    status: str
    wall_time: float
    bound: float | None = None


@dataclass(frozen=True)
class Update:
    """What one change of conditions did to the plan in force.

    Attributes
    ----------
    plan : the plan in force after the update, scored under the new conditions.
    latency : its latency (:func:`d3opt.evaluate`, no migration cost).
    bound : proven lower bound on the optimal latency under the new conditions, if known.
    gap : ``(latency - bound) / latency`` where a bound is known.
    status : the status of the best pass (``"optimal"``, ``"feasible"``, ``"timed_out"``,
        ``"heuristic"``).
    wall_time : seconds of the whole re-solve (every pass and the decision).
    moved : layers whose tier differs from the previous plan in force, in graph order.
    strategy : the Resolver's strategy.
    switched : whether the plan in force changed (False when it was kept by the stability rule
        or was already the best found).
    candidate_latency : latency of the best plan the passes found.
    migration : seconds of weight transfer of the switch made (0 when none was made).
    steps : the passes, in the order they ran (``"auto"`` reports the fast one first).
    """

    plan: Plan
    latency: float
    bound: float | None
    gap: float | None
    status: str
    wall_time: float
    moved: tuple[str, ...]
    strategy: str
    switched: bool
    candidate_latency: float
    migration: float
    steps: tuple[Step, ...]

    @property
    def moves(self) -> int:
        """Number of layers that changed tier."""
        return len(self.moved)

    @property
    def first_answer_time(self) -> float:
        """Seconds until the first pass had a plan (the fast answer of ``"auto"``)."""
        return self.steps[0].wall_time if self.steps else self.wall_time


def _holders(plan: Plan, cost: CostModel) -> dict[str, frozenset[str]]:
    """Node names holding each layer's weights under ``plan`` (tier node, plus tile helpers)."""
    nodes = cost.nodes
    held = {name: {nodes.tier_node(tier).name} for name, tier in plan.assignment.items()}
    evaluation = plan.evaluation or score(plan, cost).evaluation
    for block in evaluation.blocks:
        for name in block.block.layers:
            held[name].update(block.nodes)
    return {name: frozenset(names) for name, names in held.items()}


def migration_bytes(old: Plan, new: Plan, cost: CostModel) -> dict[str, int]:
    """Weight bytes that must cross each link for ``new`` to replace ``old``.

    A node holds the weights of the layers the plan in force runs on it (the tier's node, and
    the helper edge nodes of a tiled block); other weights are not kept. A layer gaining a node
    receives its weights from the node of its old tier: over ``device_edge`` and/or
    ``edge_cloud`` between tiers (``device_cloud`` for device<->cloud when that link exists,
    else relayed through the coordinator over both), then over ``edge_edge`` from the
    coordinator to a helper edge node. Keys, sorted, are directed uses ``"device_edge>"``
    (towards the cloud) and ``"device_edge<"`` (towards the device), and likewise for the
    other links.

    >>> from d3opt.graph import Layer, LayerGraph
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> g = LayerGraph([Layer("x", "input", out_bytes=4),
    ...                 Layer("f", "linear", param_bytes=1000, out_bytes=4)], [("x", "f")])
    >>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e9)], Node("c", flops=1e9))
    >>> cost = CostModel(g, nodes, Network(Link(1e3), Link(1e3), Link(1e3)))
    >>> a, b = (score(Plan({"x": "device", "f": t}), cost) for t in ("device", "cloud"))
    >>> migration_bytes(a, b, cost)
    {'device_edge>': 1000, 'edge_cloud>': 1000}
    """
    network, nodes = cost.network, cost.nodes
    coordinator = nodes.coordinator.name
    before, after = _holders(old, cost), _holders(new, cost)
    sent: dict[str, int] = {}
    for name in cost.graph.order:
        size = cost.graph[name].param_bytes
        gained = after[name] - before[name]
        if not size or not gained:
            continue
        source = old.assignment[name]
        uses: set[str] = set()
        for node in gained:
            tier = (Tier.DEVICE if node == nodes.device.name else
                    Tier.CLOUD if node == nodes.cloud.name else Tier.EDGE)
            if {source, tier} == {Tier.DEVICE, Tier.CLOUD} and network.device_cloud is not None:
                uses.add("device_cloud" + (">" if tier == Tier.CLOUD else "<"))
            else:
                step = 1 if tier > source else -1
                for here in range(int(source), int(tier), step):
                    pair = (Tier(here), Tier(here + step))
                    uses.update(link + (">" if step > 0 else "<") for link in _ROUTES[pair])
            if tier == Tier.EDGE and node != coordinator:
                uses.add("edge_edge>")
        for use in uses:
            sent[use] = sent.get(use, 0) + size
    return dict(sorted(sent.items()))


def migration_time(old: Plan, new: Plan, cost: CostModel) -> float:
    """Seconds to move weights from ``old`` to ``new``: one message per directed link use
    (``latency + bytes / bandwidth``, see :func:`migration_bytes`), the messages one after
    another. Zero when every node already holds what ``new`` needs.

    >>> from d3opt.graph import Layer, LayerGraph
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> g = LayerGraph([Layer("x", "input", out_bytes=4),
    ...                 Layer("f", "linear", param_bytes=1000, out_bytes=4)], [("x", "f")])
    >>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e9)], Node("c", flops=1e9))
    >>> cost = CostModel(g, nodes, Network(Link(1e3, 0.5), Link(1e3), Link(1e4)))
    >>> a, b = (score(Plan({"x": "device", "f": t}), cost) for t in ("device", "cloud"))
    >>> migration_time(a, b, cost), migration_time(b, b, cost)
    (1.6, 0.0)
    """
    total = 0.0
    for use, size in migration_bytes(old, new, cost).items():
        total += getattr(cost.network, use[:-1]).transfer_time(size)
    return total


def _finite_positive(value, what: str, *, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{what} must be finite and {'>= 0' if allow_zero else '> 0'}, "
                          f"got {value!r}")
    return number


def _recost(cost: CostModel, nodes: Nodes, network: Network) -> CostModel:
    """The cost model of new conditions; layer times are reused when the nodes are the same
    (they do not depend on the network), so a link change costs no re-timing."""
    if nodes is not cost.nodes:
        return CostModel(cost.graph, nodes, network)
    recosted = copy.copy(cost)
    recosted.network = network
    return recosted


def _moved(old: Plan, new: Plan, graph: LayerGraph) -> tuple[str, ...]:
    return tuple(n for n in graph.order if old.assignment[n] != new.assignment[n])


class Resolver:
    """Keep the best plan for changing conditions, re-solving incrementally.

    Parameters
    ----------
    graph, nodes, network : the instance (never mutated; updates make new records).
    strategy : ``"auto"``, ``"hpa"``, ``"milp"``, or another solver method for cold re-solves
        (see the module docstring).
    pins : ``{layer: tier}`` layers that must run on a given tier.
    budget : seconds the MILP may spend per update (``"milp"`` and ``"auto"``; in ``"auto"``
        the fast pass's time counts against it). None: until proven optimal.
    migration : weight ``lambda >= 0`` of the migration time in the switching rule
        (``1 / N`` amortises one weight transfer over ``N`` requests); 0 ignores migration.
    hysteresis : fraction ``h`` in ``[0, 1)``; a new plan must beat the plan in force by more
        than ``h`` of its latency.
    plan : a starting plan (re-scored and checked); None solves the instance cold.
    options : for ``"auto"``, ``"hpa"`` and ``"milp"``: ``solver=`` and ``gap=`` (MILP),
        ``tiles=`` (cold HPA and MILP), ``max_segments=``, ``window=`` (how far HPA's adjustment may
        move each cut); for a cold method: its own options.

    Raises
    ------
    ConfigError
        For an unknown strategy or a bad ``budget``, ``migration`` or ``hysteresis``.
    PlanError, InfeasibleError
        For bad pins, a starting plan that breaks them, or an instance with no plan.
    """

    def __init__(self, graph: LayerGraph, nodes: Nodes, network: Network, *,
                 strategy: str = "auto", pins: Mapping[str, "Tier | str"] | None = None,
                 budget: float | None = None, migration: float = 0.0, hysteresis: float = 0.0,
                 plan: Plan | None = None, **options):
        if strategy not in STRATEGIES and strategy not in methods():
            raise ConfigError(f"unknown strategy {strategy!r}; use one of {list(STRATEGIES)} "
                              f"or a solver method {sorted(methods())}")
        self._strategy = strategy
        self._budget = None if budget is None else _finite_positive(budget, "budget")
        self._migration = _finite_positive(migration, "migration", allow_zero=True)
        self._hysteresis = _finite_positive(hysteresis, "hysteresis", allow_zero=True)
        if self._hysteresis >= 1:
            raise ConfigError(f"hysteresis must be in [0, 1), got {hysteresis!r}")
        if strategy in STRATEGIES:
            known = {"solver", "gap", "tiles", "max_segments", "window"}
            unknown = sorted(set(options) - known)
            if unknown:
                raise ConfigError(f"strategy {strategy!r} takes the options {sorted(known)}; "
                                  f"unknown: {unknown}")
        self._options = dict(options)
        self._pins = check_pins(graph, pins)
        self._cost = CostModel(graph, nodes, network)
        self._engines = _Engines(self._strategy, self._pins, self._options)
        if plan is None:
            plan = self._engines.cold(self._cost, budget=self._budget)
        else:
            plan = score(Plan(plan.assignment, tiles=plan.tiles, pins=self._pins,
                              method=plan.method, info=plan.info), self._cost)
        self._plan = plan

    # -- state --------------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        """The plan in force, scored under the current conditions."""
        return self._plan

    @property
    def graph(self) -> LayerGraph:
        """The layer graph."""
        return self._cost.graph

    @property
    def nodes(self) -> Nodes:
        """The current nodes."""
        return self._cost.nodes

    @property
    def network(self) -> Network:
        """The current network."""
        return self._cost.network

    @property
    def pins(self) -> Mapping[str, Tier]:
        """The pins every plan honours."""
        return dict(self._pins)

    @property
    def strategy(self) -> str:
        """The re-solve strategy."""
        return self._strategy

    # -- updates ------------------------------------------------------------------------
    def set_bandwidth(self, link: str, bytes_per_s: float) -> Update:
        """Re-solve after link ``link`` (e.g. ``"device_edge"``) changes bandwidth (bytes/s)."""
        old = self._link(link)
        value = _finite_positive(bytes_per_s, f"bandwidth of link {link!r}")
        return self.update(network=self.network.with_link(link, Link(value, old.latency)))

    def set_latency(self, link: str, seconds: float) -> Update:
        """Re-solve after link ``link`` changes latency (seconds, >= 0)."""
        old = self._link(link)
        value = _finite_positive(seconds, f"latency of link {link!r}", allow_zero=True)
        return self.update(network=self.network.with_link(link, Link(old.bandwidth, value)))

    def set_speed(self, node: str, flops: float) -> Update:
        """Re-solve after node ``node`` changes peak speed (FLOP/s), e.g. under load."""
        self.nodes[node]
        value = _finite_positive(flops, f"speed of node {node!r}")
        return self.update(nodes=self.nodes.replace_node(node, flops=value))

    def _link(self, name: str) -> Link:
        if name not in LINKS:
            raise ConfigError(f"unknown link {name!r}; links are {list(LINKS)}")
        link = getattr(self.network, name)
        if link is None:
            raise ConfigError(f"link {name!r} is not configured in this network; add it with "
                              f"update(network=network.with_link({name!r}, Link(...)))")
        return link

    def update(self, network: Network | None = None, nodes: Nodes | None = None) -> Update:
        """Re-solve for new conditions (either argument None keeps the current one).

        The new nodes must have the same names in the same roles as the current ones.

        Raises
        ------
        ConfigError
            When ``network`` or ``nodes`` are not d3opt records or rename nodes.
        InfeasibleError, SolverError
            When no plan fits the new conditions or a solver fails; the state is unchanged.
        """
        start = time.perf_counter()
        network = self.network if network is None else network
        nodes = self.nodes if nodes is None else nodes
        if not isinstance(network, Network):
            raise ConfigError(f"network must be a d3opt.Network, got {type(network).__name__}")
        if not isinstance(nodes, Nodes):
            raise ConfigError(f"nodes must be d3opt.Nodes, got {type(nodes).__name__}")
        roles = lambda n: (n.device.name, tuple(e.name for e in n.edge), n.cloud.name)  # noqa: E731
        if roles(nodes) != roles(self.nodes):
            raise ConfigError(f"nodes must keep their names and roles {roles(self.nodes)}; "
                              f"got {roles(nodes)} (make a new Resolver instead)")
        cost = _recost(self._cost, nodes, network)
        steps, best = self._engines.resolve(cost, self._plan, budget=self._budget, start=start)
        if best.assignment == self._plan.assignment and best.tiles == self._plan.tiles:
            current = best
        else:
            try:
                current = score(self._plan, cost)
            except PlanError:
                current = None  # e.g. a memory cap shrank: the plan in force must change
        update = self._decide(cost, current, best, steps, start)
        self._cost, self._plan = cost, update.plan
        return update

    def _decide(self, cost: CostModel, current: Plan | None, best: Plan,
                steps: tuple[Step, ...], start: float) -> Update:
        keep = current is not None and best.latency >= current.latency
        penalty = 0.0
        if not keep:
            penalty = migration_time(current or self._plan, best, cost)
            if current is not None:
                threshold = (1 - self._hysteresis) * current.latency
                keep = best.latency + self._migration * penalty >= threshold
        chosen = current if keep else best
        bounds = [s.bound for s in steps if s.bound is not None]
        bound = max(bounds) if bounds else None
        # A proven optimum anywhere makes the best plan found optimal too.
        statuses = {s.status for s in steps}
        status = "optimal" if "optimal" in statuses else min(steps, key=lambda s: s.latency).status
        return Update(
            plan=chosen, latency=chosen.latency, bound=bound,
            gap=None if bound is None else (chosen.latency - bound) / chosen.latency
            if chosen.latency > 0 else 0.0,
            status=status, wall_time=time.perf_counter() - start,
            moved=_moved(self._plan, chosen, self.graph), strategy=self._strategy,
            switched=not keep, candidate_latency=best.latency,
            migration=0.0 if keep else penalty,
            steps=steps,
        )


class _Engines:
    """The solver passes of one strategy, with what they keep between updates."""

    def __init__(self, strategy: str, pins: Mapping[str, Tier], options: Mapping):
        self.strategy, self.pins, self.options = strategy, pins, dict(options)
        self.layout = None
        self.model = None
        self.bounds = ParametricBounds()

    def cold(self, cost: CostModel, *, budget: float | None) -> Plan:
        """The starting plan."""
        if self.strategy == "hpa":
            return self._hpa_cold(cost)
        if self.strategy in STRATEGIES:
            return self._milp(cost, None, time_limit=None)[0]
        return solve_cost(cost, self.strategy, pins=self.pins, **self.options)

    def resolve(self, cost: CostModel, current: Plan, *, budget: float | None,
                start: float) -> tuple[tuple[Step, ...], Plan]:
        """Run the strategy's passes; the steps and the best plan found."""
        steps: list[Step] = []
        plans: list[Plan] = []
        if self.strategy in ("hpa", "auto"):
            t0 = time.perf_counter()
            plan = self._hpa_adjust(cost, current)
            steps.append(Step("hpa", plan.latency, "heuristic", time.perf_counter() - t0))
            plans.append(plan)
        if self.strategy in ("milp", "auto"):
            # HPA's adjustment is never worse than the plan in force: hint with it if any.
            hint = plans[-1] if plans else current
            t0 = time.perf_counter()
            certified = self._certified(cost, hint, scored=bool(plans))
            if certified is not None:
                plan, bound = certified
                steps.append(Step("certificate", plan.latency, "optimal",
                                  time.perf_counter() - t0, bound))
            else:
                limit = None if budget is None else max(
                    budget - (time.perf_counter() - start), 1e-3)
                plan, bound = self._milp(cost, hint, time_limit=limit)
                steps.append(Step("milp", plan.latency, plan.info.status if plan.info else "",
                                  time.perf_counter() - t0, bound))
            plans.append(plan)
        if self.strategy not in STRATEGIES:
            t0 = time.perf_counter()
            plan = solve_cost(cost, self.strategy, pins=self.pins, **self.options)
            info = plan.info
            steps.append(Step(self.strategy, plan.latency, info.status if info else "",
                              time.perf_counter() - t0, info.bound if info else None))
            plans.append(plan)
        return tuple(steps), min(plans, key=lambda p: p.latency)

    def _hpa_cold(self, cost: CostModel) -> Plan:
        from d3opt.solvers.hpa import build_layout, solve_hpa

        shape = {k: self.options[k] for k in ("tiles", "max_segments") if k in self.options}
        if self.layout is None:
            self.layout = build_layout(cost.graph, pins=self.pins,
                                       max_segments=shape.get("max_segments", 8))
        return solve_hpa(cost, pins=self.pins, layout=self.layout, **shape)

    def _hpa_adjust(self, cost: CostModel, current: Plan) -> Plan:
        from d3opt.solvers.hpa import adjust, build_layout

        if self.layout is None:
            self.layout = build_layout(cost.graph, pins=self.pins,
                                       max_segments=self.options.get("max_segments", 8))
        window = {"window": self.options["window"]} if "window" in self.options else {}
        return adjust(current, cost, pins=self.pins, layout=self.layout, **window)

    def _certified(self, cost: CostModel, hint: Plan, *,
                   scored: bool) -> tuple[Plan, float] | None:
        """``(plan, bound)`` when bounds proven by earlier MILP solves show that ``hint``
        (scored under ``cost`` already when ``scored``), or a plan the MILP found at nearby
        conditions, is optimal under ``cost``."""
        lower = self.bounds.lower(cost)
        if lower is None:
            return None
        best = hint if scored else None
        for plan in ([] if scored else [hint]) + self.bounds.nearby(cost):
            if best is not None and (plan.assignment, plan.tiles) == (best.assignment,
                                                                      best.tiles):
                continue
            try:
                plan = score(plan, cost)
            except PlanError:
                continue
            if best is None or plan.latency < best.latency:
                best = plan
        if best is None or best.latency > lower + CERTIFICATE_RTOL * abs(lower):
            return None
        gap = max(0.0, (best.latency - lower) / best.latency) if best.latency > 0 else 0.0
        info = SolveInfo(backend="certificate", status="optimal", objective=best.latency,
                         bound=lower, gap=gap,
                         message="optimal by the bounds of earlier MILP solves along one link")
        return replace(best, info=info), lower

    def _milp(self, cost: CostModel, hint: Plan | None, *,
              time_limit: float | None) -> tuple[Plan, float | None]:
        from d3opt.solvers.milp import MilpModel

        try:
            if self.model is None:
                shape = {k: self.options[k] for k in ("solver", "tiles", "max_segments")
                         if k in self.options}
                self.model = MilpModel(cost, pins=self.pins, **shape)
            else:
                self.model.update(cost)
            plan = self.model.solve(time_limit=time_limit, gap=self.options.get("gap"),
                                    hint=hint)
        except Exception:
            # A failed re-cost or solve may leave the solver model half updated: rebuild it
            # on the next update rather than trust it.
            self.model = None
            raise
        if plan.info.bound is not None:
            self.bounds.record(cost, plan.info.bound, plan)
        return plan, plan.info.bound


__all__ = ["Resolver", "Update", "Step", "STRATEGIES", "migration_bytes", "migration_time"]
