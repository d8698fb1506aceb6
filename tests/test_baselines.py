"""Two-tier baselines: Neurosurgeon's best split and DADS's exact min-cut partition."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from d3opt.cost import CostModel
from d3opt.errors import InfeasibleError, PlanError
from d3opt.graph import Layer, LayerGraph
from d3opt.plan import evaluate_assignment
from d3opt.solve import solve, solve_cost
from d3opt.solvers.baselines import solve_dads, solve_neurosurgeon
from d3opt.solvers.brute import solve_brute
from d3opt.system import Link, Network, Node, Nodes, Tier

from strategies import graphs, instances

D, E, C = Tier.DEVICE, Tier.EDGE, Tier.CLOUD
REMOTES = ((E,), (C,), (E, C))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def best_two_tier_brute(cost: CostModel, remote, pins=None) -> float:
    """Brute force over every monotone assignment to {device, r}, best over r in remote."""
    best = math.inf
    for tier in remote:
        if not set((pins or {}).values()) <= {D, tier}:
            continue  # solve_brute would honour a pin outside its tiers
        try:
            plan = solve_brute(cost, pins=pins or {}, tiers=(D, tier), tiles=False)
        except InfeasibleError:
            continue
        best = min(best, plan.latency)
    return best


def used_tiers(plan) -> set[Tier]:
    return set(plan.assignment.values())


@st.composite
def contested(draw):
    """Slow links and close node speeds, so that the best cut often lies inside the graph."""
    graph = draw(graphs(min_layers=3, max_layers=10))
    speed = lambda lo, hi: draw(st.floats(lo, hi))  # noqa: E731
    edge = [Node(f"e{i}", flops=speed(2e9, 5e10)) for i in range(draw(st.integers(1, 2)))]
    nodes = Nodes(Node("dev", flops=speed(1e9, 1e10)), edge, Node("cloud", flops=speed(5e9, 2e11)))
    link = lambda: Link(speed(1e3, 1e6), speed(0.0, 0.5))  # noqa: E731
    network = Network(link(), link(), link(), link() if draw(st.booleans()) else None)
    return graph, nodes, network


@given(instances(max_layers=10, max_edge=2) | contested(), st.sampled_from(REMOTES))
def test_dads_equals_brute_force_over_two_tier_plans(instance, remote):
    cost = CostModel(*instance)
    plan = solve_dads(cost, pins={}, remote=remote)
    assert used_tiers(plan) <= {D, *remote}
    assert close(plan.latency, best_two_tier_brute(cost, remote))


@given(instances(max_layers=10, max_edge=2), st.sampled_from(REMOTES))
def test_neurosurgeon_is_the_best_prefix_split(instance, remote):
    cost = CostModel(*instance)
    plan = solve_neurosurgeon(cost, pins={}, remote=remote)
    order = cost.graph.order
    tiers = [plan.assignment[n] for n in order]
    # One split of the topological order: a device prefix, then one remote tier.
    assert tiers == sorted(tiers) and len(set(tiers) - {D}) <= 1
    assert set(tiers) <= {D, *remote}
    for tier in remote:
        for split in range(1, len(order) + 1):
            other = {n: D if i < split else tier for i, n in enumerate(order)}
            assert plan.latency <= evaluate_assignment(cost, other).latency * (1 + 1e-12)


@given(instances(max_layers=9, max_edge=2) | contested(), st.sampled_from(REMOTES))
def test_dads_never_worse_than_the_other_baselines_on_the_same_tiers(instance, remote):
    graph, nodes, network = instance
    cost = CostModel(graph, nodes, network)
    dads = solve_cost(cost, "dads", remote=remote).latency
    rivals = [solve_cost(cost, "device"), solve_cost(cost, "neurosurgeon", remote=remote)]
    rivals += [solve_cost(cost, t.name.lower()) for t in remote]
    for rival in rivals:
        assert dads <= rival.latency * (1 + 1e-9) + 1e-12, rival.method


@given(instances(max_layers=8, max_edge=2) | contested(), st.data())
def test_pins_are_respected_and_match_brute_force(instance, data):
    graph, nodes, network = instance
    cost = CostModel(graph, nodes, network)
    free = [n for n in graph.order if graph[n].op != "input"]
    chosen = data.draw(st.lists(st.sampled_from(free), max_size=2, unique=True))
    pins = {n: data.draw(st.sampled_from([D, E, C])) for n in chosen}
    expected = best_two_tier_brute(cost, (E, C), pins)
    for method in ("dads", "neurosurgeon"):
        try:
            plan = solve_cost(cost, method, pins=pins)
        except InfeasibleError as err:
            assert str(err).startswith("pins:")
            if method == "dads":
                assert expected == math.inf
            continue
        assert all(plan.assignment[n] == t for n, t in pins.items())
        assert dict(plan.pins) == pins
        if method == "dads":
            assert close(plan.latency, expected)
        else:
            assert plan.latency >= expected * (1 - 1e-9)


@given(instances(max_layers=8, max_edge=2), st.sampled_from(["dads", "neurosurgeon"]))
def test_solve_rescores_baselines_with_evaluate(instance, method):
    graph, nodes, network = instance
    plan = solve(graph, nodes, network, method)
    assert plan.method == method and plan.info.backend == method
    assert plan.info.wall_time >= 0
    check = evaluate_assignment(CostModel(graph, nodes, network), plan.assignment)
    assert close(plan.latency, check.latency)
    assert close(plan.info.objective, check.latency)


def chain(n: int, *, out_bytes: int = 1000) -> LayerGraph:
    layers = [Layer("x", "input", out_bytes=out_bytes)]
    layers += [Layer(f"l{i}", "linear", flops=1e9, param_bytes=1000, out_bytes=out_bytes)
               for i in range(1, n)]
    return LayerGraph(layers, [(layers[i].name, layers[i + 1].name) for i in range(n - 1)])


def system(*, device_memory=None, edge_memory=None, cloud_memory=None):
    nodes = Nodes(Node("d", flops=1e9, memory=device_memory),
                  [Node("e", flops=1e10, memory=edge_memory)],
                  Node("c", flops=1e11, memory=cloud_memory))
    return nodes, Network(Link(1e6, 0.01), Link(1e8), Link(1e6, 0.02))


def test_relayed_cloud_path_pays_both_links():
    # x --(1 MB)--> heavy layer: on the cloud it costs both links' bytes and latencies.
    graph = LayerGraph([Layer("x", "input", out_bytes=1_000_000),
                        Layer("f", "linear", flops=1e10, out_bytes=0)], [("x", "f")])
    nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
    net = Network(Link(1e6, 0.01), Link(1e8), Link(1e6, 0.02))
    plan = solve_dads(CostModel(graph, nodes, net), pins={}, remote=(C,))
    # device: 10 s; cloud: 1 + 0.01 + 1 + 0.02 (both links) + 0.01 s compute; no bytes return.
    assert plan.assignment["f"] == C
    assert close(plan.latency, 1.0 + 0.01 + 1.0 + 0.02 + 0.01)


def test_multi_consumer_tensor_is_charged_once():
    # x feeds three remote layers; DADS must count x's bytes once, so offloading all wins.
    layers = [Layer("x", "input", out_bytes=1_000_000)]
    layers += [Layer(f"b{i}", "linear", flops=2e9, out_bytes=1) for i in range(3)]
    layers.append(Layer("y", "add", flops=0.0, out_bytes=1))
    edges = [("x", f"b{i}") for i in range(3)] + [(f"b{i}", "y") for i in range(3)]
    graph = LayerGraph(layers, edges)
    nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e12)], Node("c", flops=1e12))
    net = Network(Link(1e6), Link(1e8), Link(1e3))
    plan = solve_dads(CostModel(graph, nodes, net), pins={}, remote=(E,))
    # All on device: 6 s. Offloaded: 1 s for x once + 6 ms compute + 1 byte back.
    assert all(plan.assignment[f"b{i}"] == E for i in range(3))
    assert close(plan.latency, 1.0 + 6e-3 + 1e-6)


def test_dads_cuts_a_dag_where_no_prefix_split_can():
    # x1 -> a (heavy) -> y <- b <- x2 (1 MB input reduced to 10 bytes). The best plan sends
    # x1 to the edge for a and keeps b on the device; no prefix of the order x1, a, x2, b, y
    # puts a remote while b stays local.
    graph = LayerGraph(
        [Layer("x1", "input", out_bytes=10), Layer("a", "linear", flops=1e10, out_bytes=10),
         Layer("x2", "input", out_bytes=1_000_000), Layer("b", "linear", flops=1e6, out_bytes=10),
         Layer("y", "add", out_bytes=10)],
        [("x1", "a"), ("x2", "b"), ("a", "y"), ("b", "y")],
    )
    nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e12)], Node("c", flops=1e12))
    cost = CostModel(graph, nodes, Network(Link(1e4, 0.01), Link(1e8), Link(1e4, 0.01)))
    dads = solve_dads(cost, pins={}, remote=(E,))
    assert [dads.assignment[n] for n in graph.order] == [D, E, D, D, E]
    # device: 1 ms (b); 20 bytes up (x1, b) 0.012 s; edge 10 ms (a); 10 bytes back 0.011 s.
    assert close(dads.latency, 1e-3 + 0.012 + 0.01 + 0.011)
    assert solve_neurosurgeon(cost, pins={}, remote=(E,)).latency > 10


def test_bad_pins_raise():
    graph = chain(4)
    nodes, net = system()
    with pytest.raises(PlanError, match="nope"):
        solve(graph, nodes, net, "dads", pins={"nope": "edge"})
    with pytest.raises(PlanError, match="'x'"):
        solve(graph, nodes, net, "neurosurgeon", pins={"x": "cloud"})
    # Two tiers only: a layer on the edge and a later one on the cloud cannot both hold.
    for method in ("dads", "neurosurgeon"):
        with pytest.raises(InfeasibleError, match="^pins:"):
            solve(graph, nodes, net, method, pins={"l1": "edge", "l3": "cloud"})
    # Monotonicity: edge before device is impossible for every plan.
    with pytest.raises(InfeasibleError, match="^pins:"):
        solve(graph, nodes, net, "dads", pins={"l1": "edge", "l2": "device"})


def test_remote_must_name_remote_tiers():
    cost = CostModel(chain(3), *system())
    for bad in ((), (D,), ("device", "edge")):
        with pytest.raises(ValueError, match="remote"):
            solve_dads(cost, pins={}, remote=bad)


def test_memory_caps_are_enforced():
    graph = chain(5)  # four layers of 1000 weight bytes, best all on the cloud
    # The device holds at most two layers, the edge and cloud at most three.
    nodes, net = system(device_memory=2000, edge_memory=3000, cloud_memory=3000)
    plan = solve(graph, nodes, net, "neurosurgeon")
    assert 1 <= len(plan.layers_on(D)) - 1 <= 2  # the input holds no weights
    # DADS's cut ignores memory: its optimum (all four on the cloud) breaks the cap.
    with pytest.raises(InfeasibleError, match="^memory caps:.*'dads'"):
        solve(graph, nodes, net, "dads")
    nodes, net = system(cloud_memory=4000)
    assert len(solve(graph, nodes, net, "dads").layers_on(C)) == 4
    nodes, net = system(device_memory=1000, edge_memory=1000, cloud_memory=1000)
    with pytest.raises(InfeasibleError, match="^memory caps:.*'neurosurgeon'"):
        solve(graph, nodes, net, "neurosurgeon")
