"""Parametric lower bounds: proven optima along one link bound the optimum in between, and
the Resolver's MILP strategy uses them to skip solves without losing optimality."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from d3opt.cost import CostModel
from d3opt.graph import Layer, LayerGraph
from d3opt.solvers.brute import solve_brute
from d3opt.solvers.incremental import Resolver
from d3opt.solvers.parametric import ParametricBounds, concave_hull
from d3opt.system import Link, Network, Node, Nodes

from strategies import instances

parameters = st.sampled_from([("device_edge", "bandwidth"), ("edge_cloud", "bandwidth"),
                              ("device_edge", "latency"), ("edge_cloud", "latency")])


def with_number(network: Network, link: str, number: str, value: float) -> Network:
    old = getattr(network, link)
    new = Link(value, old.latency) if number == "bandwidth" else Link(old.bandwidth, value)
    return network.with_link(link, new)


@settings(max_examples=40, deadline=None)
@given(instance=instances(max_layers=6, max_edge=2), parameter=parameters,
       known=st.lists(st.floats(0.05, 20.0), min_size=1, max_size=4),
       asked=st.lists(st.floats(0.01, 40.0), min_size=1, max_size=6))
def test_bound_never_exceeds_the_brute_force_optimum(instance, parameter, known, asked):
    graph, nodes, network = instance
    link, number = parameter
    base = getattr(network, link)
    scale = base.bandwidth if number == "bandwidth" else 0.01

    def cost_at(factor: float) -> CostModel:
        return CostModel(graph, nodes, with_number(network, link, number, scale * factor))

    bounds = ParametricBounds()
    for factor in known:
        cost = cost_at(factor)
        optimum = solve_brute(cost, pins={}).latency
        bounds.record(cost, optimum)
        assert math.isclose(bounds.lower(cost), optimum, rel_tol=1e-12, abs_tol=1e-15)
    for factor in asked:
        cost = cost_at(factor)
        lower = bounds.lower(cost)
        optimum = solve_brute(cost, pins={}).latency
        if lower is not None:
            assert lower <= optimum * (1 + 1e-12) + 1e-15


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 10.0), st.floats(0.0, 10.0)), min_size=1,
                max_size=12))
def test_concave_hull_is_concave_non_decreasing_and_above_every_point(points):
    theta, bound = map(np.array, zip(*points))
    t, b = concave_hull(theta, bound)
    assert np.all(np.diff(t) > 0) and np.all(np.diff(b) >= 0)
    slopes = np.diff(b) / np.diff(t)
    assert np.all(np.diff(slopes) <= 1e-9 * (1 + np.abs(slopes[1:])))
    below = theta >= t[0]
    hull = np.interp(theta[below], t, b)
    assert np.all(hull >= bound[below] - 1e-9)
    assert t[0] == theta.min()


def _offload_instance():
    g = LayerGraph([Layer("x", "input", out_bytes=1_000_000),
                    Layer("f", "linear", flops=1e10, param_bytes=100, out_bytes=4)],
                   [("x", "f")])
    nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e11)], Node("c", flops=1e12))
    return g, nodes, Network(Link(1e8), Link(1e9), Link(1e7, 0.2))


def test_other_conditions_changing_forget_the_bounds():
    g, nodes, net = _offload_instance()
    bounds = ParametricBounds()
    bounds.record(CostModel(g, nodes, net), 0.1)
    assert bounds.lower(CostModel(g, nodes, net)) == 0.1
    slower = nodes.replace_node("e", flops=1e10)
    assert bounds.lower(CostModel(g, slower, net)) is None
    lan = net.with_link("edge_edge", Link(1e6))
    assert bounds.lower(CostModel(g, nodes, lan)) is None
    both = net.with_link("device_edge", Link(5e7)).with_link("edge_cloud", Link(5e6, 0.2))
    assert bounds.lower(CostModel(g, nodes, both)) is None
    # Along one parameter the record carries over: slower device link, bound holds.
    assert bounds.lower(CostModel(g, nodes, net.with_link("device_edge", Link(5e7)))) == 0.1
    assert bounds.lower(CostModel(g, nodes, net.with_link("device_edge", Link(2e8)))) is None


def test_resolver_skips_the_solve_where_earlier_proofs_suffice_and_stays_optimal():
    g, nodes, net = _offload_instance()
    resolver = Resolver(g, nodes, net, strategy="milp")
    sequence = [2e8, 1.5e8, 1.2e8, 1e3, 1e2, 1.3e8, 5e2]
    kinds = []
    for bandwidth in sequence:
        update = resolver.set_bandwidth("device_edge", bandwidth)
        exact = solve_brute(CostModel(g, nodes, resolver.network), pins={})
        assert update.status == "optimal"
        assert math.isclose(update.latency, exact.latency, rel_tol=1e-9)
        assert update.bound is not None and update.bound <= update.latency * (1 + 1e-9)
        kinds.append(update.steps[-1].strategy)
        if kinds[-1] == "certificate":
            info = update.plan.info
            assert (info.backend, info.status) == ("certificate", "optimal")
            assert info.objective == update.latency and info.bound == update.bound
    # 1.5e8 and 1.2e8 lie between proven points with one optimal plan; 1e2 and 5e2 lie
    # below the proven 1e3 where the all-device plan sends nothing.
    assert kinds == ["milp", "certificate", "certificate", "milp", "certificate",
                     "certificate", "certificate"]
