"""The incremental re-solver: warm plans match cold optima, bad updates change nothing,
hysteresis and migration keep the plan stable."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from d3opt.cost import CostModel
from d3opt.errors import ConfigError, InfeasibleError
from d3opt.graph import Layer, LayerGraph
from d3opt.plan import Plan, evaluate, score
from d3opt.solve import solve
from d3opt.solvers.brute import solve_brute
from d3opt.solvers.incremental import Resolver, migration_bytes, migration_time
from d3opt.system import Link, Network, Node, Nodes, Tier

from strategies import instances

# -- random update sequences -----------------------------------------------------------------
changes = st.one_of(
    st.tuples(st.just("bandwidth"), st.sampled_from(["device_edge", "edge_cloud", "edge_edge"]),
              st.floats(0.02, 50.0)),
    st.tuples(st.just("latency"), st.sampled_from(["device_edge", "edge_cloud"]),
              st.floats(0.0, 0.1)),
    st.tuples(st.just("speed"), st.sampled_from(["dev", "e0", "cloud", "e1"]),
              st.floats(0.1, 10.0)),
)


def apply(resolver: Resolver, change):
    """Apply one drawn change (bandwidth and speed as a factor of the current value)."""
    kind, target, value = change
    if kind == "bandwidth":
        return resolver.set_bandwidth(target, getattr(resolver.network, target).bandwidth * value)
    if kind == "latency":
        return resolver.set_latency(target, value)
    if target == "e1" and resolver.nodes.K < 2:
        target = "e0"
    return resolver.set_speed(target, resolver.nodes[target].flops * value)


def state(resolver: Resolver):
    return resolver.plan, resolver.network, resolver.nodes


def assert_scored_by_evaluate(resolver: Resolver, update):
    check = evaluate(update.plan, resolver.graph, resolver.nodes, resolver.network,
                     pins=resolver.pins)
    assert math.isclose(update.latency, check.latency, rel_tol=1e-12, abs_tol=1e-15)
    assert update.plan is resolver.plan


@pytest.mark.parametrize("strategy", ["milp", "auto"])
@settings(max_examples=15)
@given(instance=instances(max_layers=6, max_edge=2),
       sequence=st.lists(changes, min_size=1, max_size=4))
def test_warm_milp_matches_cold_optimum_after_any_updates(strategy, instance, sequence):
    graph, nodes, network = instance
    resolver = Resolver(graph, nodes, network, strategy=strategy)
    for change in sequence:
        update = apply(resolver, change)
        assert_scored_by_evaluate(resolver, update)
        assert update.status == "optimal"
        exact = update.steps[-1].strategy
        assert exact in ("milp", "certificate")
        expected = [exact] if strategy == "milp" else ["hpa", exact]
        assert [step.strategy for step in update.steps] == expected
        cost = CostModel(graph, resolver.nodes, resolver.network)
        reference = solve_brute(cost, pins={})
        cold = solve(graph, resolver.nodes, resolver.network, method="milp")
        assert math.isclose(update.latency, reference.latency, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(update.latency, cold.latency, rel_tol=1e-9, abs_tol=1e-12)
        assert update.bound is not None and update.bound <= update.latency * (1 + 1e-9)


@settings(max_examples=20)
@given(instances(max_layers=7, max_edge=3), st.lists(changes, min_size=1, max_size=4),
       st.floats(0.0, 0.3))
def test_switching_rule_holds_for_every_update(instance, sequence, hysteresis):
    graph, nodes, network = instance
    resolver = Resolver(graph, nodes, network, strategy="brute", hysteresis=hysteresis)
    for change in sequence:
        before = resolver.plan
        update = apply(resolver, change)
        assert_scored_by_evaluate(resolver, update)
        old_now = score(before, CostModel(graph, resolver.nodes, resolver.network))
        if update.switched:
            assert update.latency < (1 - hysteresis) * old_now.latency
            assert update.latency == update.candidate_latency
        else:
            assert update.plan.assignment == before.assignment
            assert update.plan.tiles == before.tiles
            assert update.candidate_latency >= (1 - hysteresis) * old_now.latency
            assert update.migration == 0.0
        moved = tuple(n for n in graph.order if before.assignment[n] != update.plan.assignment[n])
        assert update.moved == moved and update.moves == len(moved)


@settings(max_examples=25)
@given(instances(max_layers=7, max_edge=3), st.lists(changes, min_size=1, max_size=4))
def test_hpa_strategy_plans_are_feasible_scored_and_never_worse_than_staying(instance,
                                                                             sequence):
    graph, nodes, network = instance
    resolver = Resolver(graph, nodes, network, strategy="hpa")
    for change in sequence:
        before = resolver.plan
        update = apply(resolver, change)
        assert_scored_by_evaluate(resolver, update)
        assert update.status == "heuristic" and update.bound is None
        assert [step.strategy for step in update.steps] == ["hpa"]
        stay = score(before, CostModel(graph, resolver.nodes, resolver.network))
        assert update.latency <= stay.latency * (1 + 1e-12)
        optimum = solve_brute(CostModel(graph, resolver.nodes, resolver.network), pins={})
        assert update.latency >= optimum.latency * (1 - 1e-9)


# -- bad updates -------------------------------------------------------------------------------
def small_instance():
    graph = LayerGraph(
        [Layer("x", "input", out_bytes=1_000_000),
         Layer("f", "linear", flops=1e9, param_bytes=400_000, out_bytes=4_000),
         Layer("g", "linear", flops=1e9, param_bytes=400_000, out_bytes=4)],
        [("x", "f"), ("f", "g")])
    nodes = Nodes(Node("dev", flops=1e9), [Node("e0", flops=1e10), Node("e1", flops=1e10)],
                  Node("cloud", flops=1e11))
    network = Network(Link.mbps(10, ms=20), Link.mbps(1000, ms=1), Link.mbps(50, ms=30))
    return graph, nodes, network


BAD_UPDATES = [
    (lambda r: r.set_bandwidth("radio", 1e6), "unknown link 'radio'"),
    (lambda r: r.set_bandwidth("device_edge", 0.0), "device_edge"),
    (lambda r: r.set_bandwidth("device_edge", -5.0), "device_edge"),
    (lambda r: r.set_bandwidth("edge_cloud", float("nan")), "edge_cloud"),
    (lambda r: r.set_bandwidth("edge_cloud", float("inf")), "edge_cloud"),
    (lambda r: r.set_bandwidth("device_edge", "fast"), "device_edge"),
    (lambda r: r.set_bandwidth("device_cloud", 1e6), "device_cloud.*not configured"),
    (lambda r: r.set_latency("edge_edge", -0.1), "edge_edge"),
    (lambda r: r.set_latency("edge_edge", float("nan")), "edge_edge"),
    (lambda r: r.set_speed("e7", 1e9), "'e7'"),
    (lambda r: r.set_speed("e1", 0.0), "'e1'"),
    (lambda r: r.set_speed("cloud", float("nan")), "'cloud'"),
    (lambda r: r.update(network="fast"), "Network"),
    (lambda r: r.update(nodes=Nodes(r.nodes.device, [r.nodes.edge[0], Node("e9", flops=1e9)],
                                    r.nodes.cloud)), "names and roles"),
]


@pytest.mark.parametrize("strategy", ["brute", "hpa", "milp", "auto"])
@pytest.mark.parametrize(("bad", "message"), BAD_UPDATES)
def test_bad_updates_raise_and_leave_state_unchanged(strategy, bad, message):
    resolver = Resolver(*small_instance(), strategy=strategy)
    resolver.set_bandwidth("device_edge", 2e5)
    before = state(resolver)
    with pytest.raises(ConfigError, match=message):
        bad(resolver)
    assert state(resolver) == before
    # The Resolver still works, and still agrees with a cold solve.
    update = resolver.set_bandwidth("device_edge", 5e7)
    reference = solve_brute(CostModel(resolver.graph, resolver.nodes, resolver.network), pins={})
    assert math.isclose(update.latency, reference.latency, rel_tol=1e-9)


@pytest.mark.parametrize("strategy", ["brute", "hpa", "milp", "auto"])
def test_infeasible_update_leaves_state_unchanged(strategy):
    resolver = Resolver(*small_instance(), strategy=strategy)
    before = state(resolver)
    capped = resolver.nodes
    for name in ("dev", "e0", "e1", "cloud"):
        capped = capped.replace_node(name, memory=1000)
    with pytest.raises(InfeasibleError):
        resolver.update(nodes=capped)
    assert state(resolver) == before
    update = resolver.set_speed("cloud", 1e12)
    assert update.plan.assignment["g"] == Tier.CLOUD


def test_bad_options_are_config_errors():
    graph, nodes, network = small_instance()
    for kwargs in ({"strategy": "magic"}, {"hysteresis": 1.0}, {"hysteresis": -0.1},
                   {"migration": float("nan")}, {"budget": 0.0},
                   {"strategy": "milp", "time_limit": 1.0}):
        with pytest.raises(ConfigError):
            Resolver(graph, nodes, network, **kwargs)


def test_starting_plan_is_rescored_and_pins_are_kept():
    graph, nodes, network = small_instance()
    start = Plan({"x": "device", "f": "device", "g": "edge"})
    resolver = Resolver(graph, nodes, network, strategy="brute", plan=start, pins={"f": "device"})
    assert resolver.plan.assignment == start.assignment
    assert resolver.plan.latency == evaluate(start, graph, nodes, network).latency
    update = resolver.set_bandwidth("device_edge", 1e9)
    assert update.plan.assignment["f"] == Tier.DEVICE


# -- stability ---------------------------------------------------------------------------------
def two_plan_instance(param_bytes: int = 0):
    """``f`` on the device takes 1 s; on the edge ``1e6 / b + 0.1`` s: the edge wins above
    b = 1.11e6 bytes/s. The cloud is too far to matter."""
    graph = LayerGraph([Layer("x", "input", out_bytes=1_000_000),
                        Layer("f", "linear", flops=1e9, param_bytes=param_bytes, out_bytes=1)],
                       [("x", "f")])
    nodes = Nodes(Node("dev", flops=1e9), [Node("e0", flops=1e10)], Node("cloud", flops=1e9))
    network = Network(Link(1.2e6), Link(1e9), Link(1e3, 1.0))
    return graph, nodes, network


@pytest.mark.parametrize("strategy", ["brute", "hpa", "milp", "auto"])
def test_hysteresis_stops_flapping_on_alternating_bandwidth(strategy):
    sequence = [1.0e6, 1.2e6] * 5   # each step flips which plan is best by 7-9 %
    flapping = Resolver(*two_plan_instance(), strategy=strategy)
    stable = Resolver(*two_plan_instance(), strategy=strategy, hysteresis=0.15)
    assert flapping.plan.assignment["f"] == stable.plan.assignment["f"] == Tier.EDGE
    flips = [flapping.set_bandwidth("device_edge", b).switched for b in sequence]
    kept = [stable.set_bandwidth("device_edge", b).switched for b in sequence]
    assert all(flips)
    assert not any(kept)
    assert stable.plan.assignment["f"] == Tier.EDGE
    # A large change still gets through: a dead radio moves f to the device.
    update = stable.set_bandwidth("device_edge", 1e5)
    assert update.switched and update.plan.assignment["f"] == Tier.DEVICE


def test_migration_cost_delays_a_move_that_does_not_pay_off():
    # 20 MB of weights over the radio: moving f to the edge costs far more than it saves once.
    args = two_plan_instance(param_bytes=20_000_000)
    once = Resolver(*args, strategy="brute", migration=1.0,
                    plan=Plan({"x": "device", "f": "device"}))
    update = once.set_bandwidth("device_edge", 1e7)
    assert not update.switched and once.plan.assignment["f"] == Tier.DEVICE
    assert update.candidate_latency < update.latency
    amortised = Resolver(*args, strategy="brute", migration=1e-3,
                         plan=Plan({"x": "device", "f": "device"}))
    update = amortised.set_bandwidth("device_edge", 1e7)
    assert update.switched and update.plan.assignment["f"] == Tier.EDGE
    assert math.isclose(update.migration, 20_000_000 / 1e7)


def test_migration_bytes_follow_the_links_and_tile_helpers():
    graph, nodes, network = small_instance()
    direct = network.with_link("device_cloud", Link(1e6, 0.5))
    relayed = CostModel(graph, nodes, network)
    plans = {t: score(Plan({"x": "device", "f": t, "g": t}), relayed) for t in ("device", "cloud")}
    assert migration_bytes(plans["device"], plans["cloud"], relayed) == {
        "device_edge>": 800_000, "edge_cloud>": 800_000}
    assert migration_bytes(plans["cloud"], plans["device"], relayed) == {
        "device_edge<": 800_000, "edge_cloud<": 800_000}
    with_direct = CostModel(graph, nodes, direct)
    assert migration_bytes(plans["device"], plans["cloud"], with_direct) == {
        "device_cloud>": 800_000}
    assert migration_time(plans["device"], plans["cloud"], with_direct) == 0.5 + 0.8
    assert migration_time(plans["cloud"], plans["cloud"], with_direct) == 0.0


def test_migration_to_a_tiled_block_ships_weights_to_the_helper():
    from d3opt.graph import Window
    from d3opt.plan import TiledBlock

    w = Window(kernel=3, padding=1)
    graph = LayerGraph([Layer("x", "input", out_shape=(1, 3, 16, 16)),
                        Layer("c", "conv", flops=1e9, param_bytes=5000, out_shape=(1, 8, 16, 16),
                              window=w)], [("x", "c")])
    nodes = Nodes(Node("dev", flops=1e9), [Node("e0", flops=1e10), Node("e1", flops=1e10)],
                  Node("cloud", flops=1e11))
    cost = CostModel(graph, nodes, Network(Link(1e6), Link(1e8), Link(1e7)))
    untiled = score(Plan({"x": "device", "c": "edge"}), cost)
    tiled = score(Plan({"x": "device", "c": "edge"}, tiles=[TiledBlock(("c",), 2)]), cost)
    assert migration_bytes(untiled, tiled, cost) == {"edge_edge>": 5000}
    assert migration_bytes(tiled, untiled, cost) == {}


def test_update_reports_cold_method_steps_and_wall_time():
    resolver = Resolver(*small_instance(), strategy="dads")
    update = resolver.set_bandwidth("edge_cloud", 1e4)
    assert [s.strategy for s in update.steps] == ["dads"]
    assert update.wall_time >= update.steps[0].wall_time > 0
    assert update.first_answer_time == update.steps[0].wall_time
    assert update.strategy == "dads"


# -- trace replay ------------------------------------------------------------------------------
def test_replay_measures_regret_against_the_cold_optimum():
    from d3opt.replay import replay
    from d3opt.traces import Trace, synthetic_trace

    graph, nodes, network = two_plan_instance()
    trace = synthetic_trace(seconds=20, mean_mbps=9.0, seed=5, drop_rate=0.2)
    result = replay(graph, nodes, network, trace, strategies=("hpa", "milp"))
    assert len(result.optimum) == len(trace)
    assert set(result.latency) == {"hpa", "milp", "static", "cold"}
    milp, cold, static = (result.summary(s) for s in ("milp", "cold", "static"))
    assert cold.mean_regret == 0.0 and milp.max_regret < 1e-9
    # The bandwidth crosses 1.11e6 bytes/s both ways, so a fixed plan loses somewhere.
    assert (trace.bandwidth > 1.2e6).any() and (trace.bandwidth < 1.0e6).any()
    assert static.max_regret > 0.05 and static.plan_changes == 0
    assert milp.plan_changes == cold.plan_changes > 0
    # Every cold step solves; the warm MILP proves some steps from earlier bounds instead.
    assert cold.milp_solves == cold.steps and result.summary("hpa").milp_solves == 0
    assert 0 < milp.milp_solves < len(trace) - 1
    assert milp.median_solve_time > 0 and math.isnan(static.median_solve_time)
    for s in ("hpa", "milp", "static"):
        assert (result.latency[s] >= result.optimum * (1 - 1e-9)).all()
    with pytest.raises(ConfigError, match="device_cloud"):
        replay(graph, nodes, network, Trace([0.0], [1e6]), link="device_cloud")
