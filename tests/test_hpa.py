"""HPA (D3's heuristic) and its partial adjustment, held to brute force and evaluate()."""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import graphs, instances, systems

from d3opt import CostModel, InfeasibleError, Layer, LayerGraph, Link, Network, Node, Nodes, Tier
from d3opt.plan import evaluate_assignment
from d3opt.solve import solve_cost
from d3opt.solvers.brute import solve_brute
from d3opt.solvers.hpa import _block_tiling, adjust, build_layout, solve_hpa
from d3opt.tiling import block_cost, block_times

REL = 1e-9


def assert_scored(plan, cost, pins=None):
    check = evaluate_assignment(cost, plan.assignment, plan.tiles, pins=pins or {})
    assert math.isclose(check.latency, plan.latency, rel_tol=REL, abs_tol=1e-12)
    assert plan.info.status == "heuristic"


@given(instances(max_layers=8, max_edge=3))
def test_hpa_is_feasible_scored_and_never_beats_brute_force(instance):
    cost = CostModel(*instance)
    plan = solve_hpa(cost, pins={})
    assert_scored(plan, cost)
    best = solve_brute(cost, pins={})
    assert plan.latency >= best.latency * (1 - REL) - 1e-12


@st.composite
def chains(draw):
    n = draw(st.integers(2, 9))
    layers = [Layer("in", "input", out_bytes=draw(st.integers(1, 10**6)))]
    for i in range(1, n):
        layers.append(Layer(f"l{i}", draw(st.sampled_from(["conv", "linear", "other"])),
                            flops=draw(st.floats(0, 5e9)), param_bytes=draw(st.integers(0, 10**6)),
                            out_bytes=draw(st.integers(1, 10**6))))
    names = [layer.name for layer in layers]
    return LayerGraph(layers, list(zip(names, names[1:])))


@given(chains(), systems(max_edge=1))
def test_hpa_is_optimal_on_chains_with_one_edge_node(graph, system):
    cost = CostModel(graph, *system)
    plan = solve_hpa(cost, pins={})
    assert math.isclose(plan.latency, solve_brute(cost, pins={}).latency, rel_tol=REL,
                        abs_tol=1e-12)


@given(instances(max_layers=8, max_edge=2), st.data())
def test_pins_are_honoured_or_no_plan_exists(instance, data):
    graph = instance[0]
    cost = CostModel(*instance)
    movable = [n for n in graph.order if graph[n].op != "input"]
    chosen = data.draw(st.lists(st.sampled_from(movable), max_size=3, unique=True))
    pins = {n: data.draw(st.sampled_from(list(Tier))) for n in chosen}
    try:
        best = solve_brute(cost, pins=pins)
    except InfeasibleError:
        with pytest.raises(InfeasibleError):
            solve_hpa(cost, pins=pins)
        return
    plan = solve_hpa(cost, pins=pins)
    assert all(plan.assignment[n] == t for n, t in pins.items())
    assert_scored(plan, cost, pins)
    assert plan.latency >= best.latency * (1 - REL) - 1e-12


@given(instances(max_layers=7, max_edge=3), st.data())
def test_memory_caps_are_honoured(instance, data):
    graph, nodes, network = instance
    total = graph.total_param_bytes
    capped = []
    for node in nodes.all:
        share = data.draw(st.sampled_from([None, 0.3, 0.6, 1.0]))
        capped.append(replace(node, memory=None if share is None else max(1, int(share * total))))
    nodes = Nodes(capped[0], capped[1:-1], capped[-1])
    cost = CostModel(graph, nodes, network)
    try:
        plan = solve_hpa(cost, pins={})
    except InfeasibleError:
        return
    assert_scored(plan, cost)  # evaluate_assignment raises PlanError on a broken cap
    for node in nodes.all:
        if node.memory is not None:
            assert plan.evaluation.memory[node.name] <= node.memory


@given(instances(max_layers=9, max_edge=3), st.data())
def test_adjust_is_feasible_and_never_worse_than_the_plan_it_starts_from(instance, data):
    graph, nodes, network = instance
    plan = solve_hpa(CostModel(graph, nodes, network), pins={})
    factor = data.draw(st.sampled_from([0.01, 0.1, 10.0, 100.0]))
    link_name = data.draw(st.sampled_from(["device_edge", "edge_cloud", "edge_edge"]))
    link = getattr(network, link_name)
    changed = network.with_link(link_name, Link(link.bandwidth * factor, link.latency))
    cost = CostModel(graph, nodes, changed)
    window = data.draw(st.integers(0, 4))
    moved = adjust(plan, cost, window=window)
    assert_scored(moved, cost)
    before = evaluate_assignment(cost, plan.assignment, plan.tiles).latency
    assert moved.latency <= before * (1 + REL) + 1e-12


@given(instances(max_layers=9, max_edge=3))
def test_adjust_with_a_window_covering_everything_matches_a_full_solve(instance):
    graph, nodes, network = instance
    cost = CostModel(graph, nodes, network)
    start = solve_hpa(CostModel(graph, nodes, network.with_link(
        "device_edge", Link(network.device_edge.bandwidth * 50))), pins={})
    moved = adjust(start, cost, window=len(graph), refine=False)
    full = solve_hpa(cost, pins={}, refine=False)
    assert moved.latency <= full.latency * (1 + REL) + 1e-12


@given(graphs(max_layers=9))
def test_layout_byte_tables_match_evaluate_for_every_cut_pair(graph):
    lay = build_layout(graph)
    nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e9)], Node("c", flops=1e9))
    for direct in (None, Link(1.0)):
        cost = CostModel(graph, nodes, Network(Link(1.0), Link(1.0), Link(1.0), direct))
        for i in range(lay.n_inputs, lay.n + 1):
            for j in range(i, lay.n + 1):
                tiers = {n: Tier.DEVICE if p < i else Tier.EDGE if p < j else Tier.CLOUD
                         for p, n in enumerate(lay.order)}
                ev = evaluate_assignment(cost, tiers)
                relayed = 0 if direct else lay.dc_bytes[i, j]
                assert ev.link_bytes["device->edge"] == lay.de_bytes[i, j] + relayed
                assert ev.link_bytes["edge->cloud"] == lay.live[j] - lay.dc_bytes[i, j] + relayed
                assert ev.link_bytes["device->cloud"] == (lay.dc_bytes[i, j] if direct else 0)


@given(instances(max_layers=9, max_edge=3))
def test_each_block_gets_its_fastest_tile_count_whose_helpers_hold_its_weights(instance):
    cost = CostModel(*instance)
    lay = build_layout(cost.graph)
    tiling = _block_tiling(cost, lay, block_times(cost, lay.geometry))
    for b, block in enumerate(lay.blocks):
        untiled = sum(cost.time(name, Tier.EDGE) for name in block.layers)
        weights = sum(cost.graph[name].param_bytes for name in block.layers)
        options = {}
        for k in range(2, min(cost.nodes.K, cost.graph[block.exit].out_shape[2]) + 1):
            exact = block_cost(cost, block, k)
            if all(cost.nodes[name].memory is None or weights <= cost.nodes[name].memory
                   for name in exact.nodes[1:]):
                options[k] = exact.time
        best = min(options.values(), default=math.inf)
        if best < untiled * (1 - 1e-9):
            assert options[tiling.k[b]] == pytest.approx(best, rel=1e-9)
            assert tiling.saving[b] == pytest.approx(untiled - best, rel=1e-9, abs=1e-15)
        elif best > untiled * (1 + 1e-9):
            assert tiling.k[b] == 0 and tiling.saving[b] == 0


def test_hpa_on_a_residual_cnn_tiles_the_edge_when_the_lan_is_fast():
    from d3opt import zoo
    from d3opt.frontends.torch import from_torch

    graph = from_torch(zoo.get("tinycnn"), zoo.example_input("tinycnn"))
    slow_device = Node("d", flops=1e6)
    nodes = Nodes(slow_device, [Node(f"e{i}", flops=1e7) for i in range(4)], Node("c", flops=1e7))
    net = Network(Link(1e9), Link(1e12), Link(1e3, 1.0))
    cost = CostModel(graph, nodes, net)
    plan = solve_cost(cost, "hpa")
    assert plan.tiles, "four equal edge nodes on a free LAN should share the conv work"
    assert all(plan.assignment[n] == Tier.EDGE for t in plan.tiles for n in t.layers)
    assert plan.latency < solve_cost(cost, "edge").latency
    brute_free = solve_hpa(cost, pins={}, tiles=False)
    assert plan.latency < brute_free.latency


def test_infeasible_memory_caps_raise_with_the_family_named():
    graph = LayerGraph([Layer("x", "input", out_bytes=10), Layer("f", "linear", flops=1e9,
                        param_bytes=1000, out_bytes=4)], [("x", "f")])
    tiny = dict(memory=10)
    nodes = Nodes(Node("d", flops=1e9, **tiny), [Node("e", flops=1e9, **tiny)],
                  Node("c", flops=1e9, **tiny))
    cost = CostModel(graph, nodes, Network(Link(1.0), Link(1.0), Link(1.0)))
    with pytest.raises(InfeasibleError, match="memory caps"):
        solve_hpa(cost, pins={})


def test_hpa_is_never_better_than_the_milp():
    milp = pytest.importorskip("d3opt.solvers.milp")

    @settings(max_examples=15)
    @given(instances(max_layers=9, max_edge=3))
    def check(instance):
        cost = CostModel(*instance)
        exact = milp.solve_milp(cost, pins={})
        plan = solve_hpa(cost, pins={})
        if exact.info.status == "optimal":
            assert plan.latency >= exact.latency * (1 - 1e-6) - 1e-9

    check()


def test_adjust_reaches_a_far_two_tier_plan_in_one_step():
    # A 40-layer chain run on the edge; the radio collapses, so everything belongs on the
    # device, 39 positions away from the device|edge cut: beyond a window of 2, but a
    # two-tier split at a cut point.
    layers = [Layer("x", "input", out_bytes=1_000_000)]
    layers += [Layer(f"f{i}", "other", flops=1e8, out_bytes=1_000_000) for i in range(40)]
    graph = LayerGraph(layers, [(a.name, b.name) for a, b in zip(layers, layers[1:])])
    nodes = Nodes(Node("d", flops=1e10), [Node("e", flops=1e12)], Node("c", flops=1e12))
    fast = Network(Link(1e9), Link(1e9), Link(1e3))
    lay = build_layout(graph)
    plan = solve_hpa(CostModel(graph, nodes, fast), pins={}, layout=lay)
    assert plan.layers_on("edge") == tuple(f"f{i}" for i in range(40))
    slow = CostModel(graph, nodes, fast.with_link("device_edge", Link(1e3)))
    moved = adjust(plan, slow, window=2, layout=lay)
    assert moved.layers_on("device") == graph.order
    # HPA is exact on chains with one edge node (tested above): the full solve's optimum.
    assert math.isclose(moved.latency, solve_hpa(slow, pins={}, layout=lay).latency,
                        rel_tol=REL)
