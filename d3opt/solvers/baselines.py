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
from collections.abc import Mapping, Sequence

import networkx as nx

from d3opt.cost import CostModel
from d3opt.errors import InfeasibleError, PlanError
from d3opt.plan import Plan, SolveInfo, evaluate_assignment, score
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


def _remote_tiers(remote: Sequence["Tier | str"], method: str) -> tuple[Tier, ...]:
    tiers = tuple(sorted({Tier.parse(t) for t in remote}))
    if not tiers or Tier.DEVICE in tiers:
        raise ValueError(f"method {method!r}: remote must name the edge and/or the cloud, "
                         f"got {list(remote)!r}")
    return tiers


def _seconds_per_byte(cost: CostModel, tier: Tier) -> float:
    """Seconds per byte sent from the device to ``tier`` (and back: links are symmetric).

    Device->cloud data without a direct link is relayed through the coordinator edge node and
    crosses both links.
    """
    net = cost.network
    if tier == Tier.EDGE:
        path = [net.device_edge]
    elif net.device_cloud is not None:
        path = [net.device_cloud]
    else:
        path = [net.device_edge, net.edge_cloud]
    return sum(1.0 / link.bandwidth for link in path)


def _best_of(cost: CostModel, candidates, pins: Mapping[str, Tier]):
    """The lowest-latency ``(latency, assignment, tier)`` among pin-honouring candidates.

    Candidates breaking a memory cap are skipped. Returns it (None if none is feasible) and
    whether any candidate was offered, which tells pins apart from memory caps in errors.
    """
    best, offered = None, False
    for assignment, tier in candidates:
        offered = True
        try:
            latency = evaluate_assignment(cost, assignment, pins=pins).latency
        except PlanError:
            continue
        if best is None or latency < best[0]:
            best = (latency, assignment, tier)
    return best, offered


def _finish(cost: CostModel, best: tuple[float, dict[str, Tier], Tier] | None,
            pins: Mapping[str, Tier], method: str, start: float, message: str) -> Plan:
    _, assignment, tier = best
    evaluation = evaluate_assignment(cost, assignment, pins=pins)
    info = SolveInfo(backend=method, status="heuristic", objective=evaluation.latency,
                     wall_time=time.perf_counter() - start,
                     message=f"{message} (device+{tier.name.lower()})")
    return Plan(assignment, pins=pins, method=method, info=info, evaluation=evaluation)


def _no_plan(method: str, pins: Mapping[str, Tier], pinned_ok: bool) -> InfeasibleError:
    if not pinned_ok:
        return InfeasibleError(f"pins: method {method!r} has no two-tier plan honouring the "
                               f"pins {({k: v.name.lower() for k, v in pins.items()})}")
    hint = " (its min-cut does not model memory; try method 'milp')" if method == "dads" else ""
    return InfeasibleError(f"memory caps: every two-tier plan method {method!r} considered "
                           f"breaks a node's memory cap{hint}")


def solve_neurosurgeon(cost: CostModel, *, pins: Mapping[str, Tier],
                       remote: Sequence["Tier | str"] = (Tier.EDGE, Tier.CLOUD)) -> Plan:
    """Neurosurgeon (Kang et al., ASPLOS 2017): the best single split of a layer chain.

    The layers in topological order (``graph.order``) are cut once: the prefix runs on the
    device, the suffix on one remote tier. Every split point and every tier in ``remote`` is
    scored with :func:`~d3opt.plan.evaluate_assignment`; splits that break a pin or a memory
    cap, or leave an input off the device, are skipped. A prefix of a topological order is
    always monotone.

    Parameters
    ----------
    cost : the instance.
    pins : ``{layer: tier}`` layers that must run on a given tier.
    remote : remote tiers to try (default both the edge and the cloud; the best wins).

    Raises
    ------
    InfeasibleError
        When no split honours the pins (``"pins: ..."``) or the memory caps
        (``"memory caps: ..."``).

    Examples
    --------
    >>> from d3opt.graph import Layer, LayerGraph
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> g = LayerGraph([Layer("x", "input", out_bytes=10_000),
    ...                 Layer("a", "conv", flops=1e8, out_bytes=100),
    ...                 Layer("b", "linear", flops=1e10, out_bytes=4)], [("x", "a"), ("a", "b")])
    >>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e11)], Node("c", flops=1e12))
    >>> cost = CostModel(g, nodes, Network(Link(1e5), Link(1e8), Link(1e5)))
    >>> plan = solve_neurosurgeon(cost, pins={})
    >>> [plan.assignment[n].name for n in g.order]
    ['DEVICE', 'DEVICE', 'CLOUD']
    """
    start = time.perf_counter()
    tiers = _remote_tiers(remote, "neurosurgeon")
    order = cost.graph.order
    inputs = set(cost.graph.inputs)
    last_input = max(cost.graph.index[n] for n in inputs)
    splits = (
        ({n: Tier.DEVICE if i < split else tier for i, n in enumerate(order)}, tier)
        for tier in tiers for split in range(last_input + 1, len(order) + 1)
    )
    best, pinned_ok = _best_of(
        cost, ((a, t) for a, t in splits if all(a[n] == p for n, p in pins.items())), pins
    )
    if best is None:
        raise _no_plan("neurosurgeon", pins, pinned_ok)
    return _finish(cost, best, pins, "neurosurgeon", start, "best single split of graph.order")


def _dads_cut(cost: CostModel, tier: Tier, pins: Mapping[str, Tier], *, quiet_forward: bool,
              quiet_return: bool) -> dict[str, Tier] | None:
    """The two-tier assignment of least additive cost by one s-t minimum cut.

    The source side runs on the device, the sink side on ``tier``. Capacities (seconds):
    ``s -> v`` the remote time of ``v`` (plus, for a result, its return bytes), ``v -> t`` its
    device time, ``u -> aux_u`` the bytes of ``u``'s tensor (``aux_u -> v`` unbounded for each
    consumer, so a tensor is charged once however many consumers cross), ``v -> u`` unbounded
    for every edge ``u -> v`` (tiers never go back). ``quiet_forward`` forbids any non-empty
    tensor from crossing, ``quiet_return`` keeps every non-empty result on the device (so the
    per-message latencies the cut cannot see are known to be zero). None when infeasible.
    """
    graph = cost.graph
    per_byte = _seconds_per_byte(cost, tier)  # message latencies: the caller's four cases
    source, sink = ("source",), ("sink",)
    finite: dict[tuple, float] = {}
    unbounded: set[tuple] = set()

    def add(a, b, seconds: float) -> None:
        finite[a, b] = finite.get((a, b), 0.0) + seconds

    for i, name in enumerate(graph.order):
        v = ("layer", name)
        layer = graph[name]
        add(source, v, float(cost.tier_times[i, tier]))
        add(v, sink, float(cost.tier_times[i, Tier.DEVICE]))
        succs = graph.succs(name)
        if not succs:
            add(source, v, layer.out_bytes * per_byte)
            if quiet_return and layer.out_bytes > 0:
                unbounded.add((source, v))
        elif layer.out_bytes > 0:
            if len(succs) == 1:
                add(v, ("layer", succs[0]), layer.out_bytes * per_byte)
            else:
                aux = ("tensor", name)
                add(v, aux, layer.out_bytes * per_byte)
                unbounded.update((aux, ("layer", s)) for s in succs)
            if quiet_forward:
                unbounded.update((v, ("layer", s)) for s in succs)
        unbounded.update((("layer", s), v) for s in succs)
        if layer.op == "input":
            unbounded.add((source, v))
    for name, pinned in pins.items():
        if pinned == Tier.DEVICE:
            unbounded.add((source, ("layer", name)))
        elif pinned == tier:
            unbounded.add((("layer", name), sink))
        else:
            return None
    # networkx max-flow is exact only on integers: scale seconds so the total is ~1e15.
    total = sum(finite.values())
    scale = 1e15 / total if total > 0 else 1.0
    flow = nx.DiGraph()
    flow.add_nodes_from([source, sink])
    flow.add_edges_from(unbounded)
    flow.add_edges_from((a, b, {"capacity": round(c * scale)})
                        for (a, b), c in finite.items() if (a, b) not in unbounded)
    try:
        _, (_, remote_side) = nx.minimum_cut(flow, source, sink)
    except nx.NetworkXUnbounded:
        return None
    return {n: tier if ("layer", n) in remote_side else Tier.DEVICE for n in graph.order}


def solve_dads(cost: CostModel, *, pins: Mapping[str, Tier],
               remote: Sequence["Tier | str"] = (Tier.EDGE, Tier.CLOUD)) -> Plan:
    """DADS (Hu et al., INFOCOM 2019): the optimal two-tier partition of the DAG by min-cut.

    For each remote tier in ``remote`` (the edge's coordinator, the cloud) the DAG is split
    into a device part and a remote part by an s-t minimum cut (``networkx.minimum_cut``):
    compute times and tensor bytes are cut capacities, one auxiliary vertex per
    multi-consumer tensor charges a tensor once however many of its consumers are remote,
    unbounded reverse edges keep tiers monotone, inputs and pins get unbounded edges to their
    side. The per-message link latencies (paid only when some bytes cross, and when some
    result comes back) are not additive: the cut is solved for each of the four cases
    "forward message or not" x "return message or not", each case charging its latencies,
    and every candidate is scored by :func:`~d3opt.plan.evaluate_assignment`; the best of
    them is the exact optimum over all monotone two-tier plans. Device->cloud data without a
    direct link pays both links (bandwidths and latencies).

    Parameters
    ----------
    cost : the instance.
    pins : ``{layer: tier}`` layers that must run on a given tier.
    remote : remote tiers to try (default both the edge and the cloud; the best wins).

    Raises
    ------
    InfeasibleError
        When the pins leave no two-tier plan (``"pins: ..."``) or every candidate breaks a
        memory cap (``"memory caps: ..."``).

    Notes
    -----
    Memory caps are not part of the cut: candidates breaking a cap are discarded, so with
    caps the answer is feasible but may not be the best capped two-tier plan.

    Examples
    --------
    >>> from d3opt.graph import Layer, LayerGraph
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> g = LayerGraph([Layer("x", "input", out_bytes=10_000),
    ...                 Layer("a", "conv", flops=1e8, out_bytes=100),
    ...                 Layer("b", "linear", flops=1e10, out_bytes=4)], [("x", "a"), ("a", "b")])
    >>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e11)], Node("c", flops=1e12))
    >>> cost = CostModel(g, nodes, Network(Link(1e5), Link(1e8), Link(1e5)))
    >>> plan = solve_dads(cost, pins={})
    >>> [plan.assignment[n].name for n in g.order], round(plan.latency, 4)
    (['DEVICE', 'DEVICE', 'CLOUD'], 0.1121)
    """
    start = time.perf_counter()
    tiers = _remote_tiers(remote, "dads")
    cuts = (
        (_dads_cut(cost, tier, pins, quiet_forward=forward, quiet_return=back), tier)
        for tier in tiers for forward in (False, True) for back in (False, True)
    )
    best, pinned_ok = _best_of(cost, ((a, t) for a, t in cuts if a is not None), pins)
    if best is None:
        raise _no_plan("dads", pins, pinned_ok)
    return _finish(cost, best, pins, "dads", start, "exact two-tier min-cut")
