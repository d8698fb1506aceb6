"""The exact MILP: one class of solver properties, subclassed per backend.

Each backend must find the brute-force optimum on random small DAGs (tiles, pins and memory
caps included), never lose to a baseline, report time limits honestly, accept hints, re-cost
in place, and export a model that another solver reads back to the same optimum.
"""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from d3opt.cost import CostModel
from d3opt.errors import InfeasibleError, SolverError
from d3opt.graph import Layer, LayerGraph, Window
from d3opt.plan import Plan, evaluate_assignment
from d3opt.solve import solve_cost
from d3opt.solvers import baselines
from d3opt.solvers.brute import solve_brute
from d3opt.solvers.milp import MilpModel, export_model, solve_milp
from d3opt.solvers.milp_model import OBJECTIVE_UNIT
from d3opt.system import Link, Network, Node, Nodes, Tier, builtin_scenarios
from tests.strategies import instances

TIERS = (Tier.DEVICE, Tier.EDGE, Tier.CLOUD)


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@st.composite
def pinned_instances(draw):
    """An instance with random pins (possibly contradictory) on non-input layers."""
    graph, nodes, network = draw(instances(max_layers=7))
    layers = [n for n in graph.order if graph[n].op != "input"]
    chosen = draw(st.lists(st.sampled_from(layers), max_size=3, unique=True)) if layers else []
    pins = {name: draw(st.sampled_from(TIERS)) for name in chosen}
    return CostModel(graph, nodes, network), pins


@st.composite
def capped_instances(draw):
    """An instance whose nodes have random memory caps (some plans, or all, break them)."""
    graph, nodes, network = draw(instances(max_layers=7, min_edge=2))
    total = max(graph.total_param_bytes, 1)
    for node in nodes.all:
        if draw(st.booleans()):
            share = draw(st.floats(0.0, 1.0))
            nodes = nodes.replace_node(node.name, memory=int(share * total) + 1)
    return CostModel(graph, nodes, network)


def chain_graph(n: int, *, seed: int) -> LayerGraph:
    """A seeded conv chain with residual adds and a classifier head (n layers)."""
    rng = np.random.default_rng(seed)
    w = Window(kernel=3, stride=1, padding=1)
    layers = [Layer("in", "input", out_shape=(1, 16, 32, 32))]
    edges = []
    for i in range(1, n - 1):
        prev = layers[-1].name
        if i % 3 == 0 and i >= 3:
            layers.append(Layer(f"l{i}", "add", flops=1e5, out_shape=(1, 16, 32, 32)))
            edges += [(prev, f"l{i}"), (layers[-3].name, f"l{i}")]
        else:
            layers.append(Layer(f"l{i}", "conv", flops=float(rng.uniform(1e8, 2e9)),
                                param_bytes=int(rng.integers(1e4, 1e6)),
                                out_shape=(1, 16, 32, 32), window=w))
            edges.append((prev, f"l{i}"))
    layers.append(Layer("head", "linear", flops=1e6, param_bytes=10**6, out_bytes=40))
    edges.append((layers[-2].name, "head"))
    return LayerGraph(layers, edges)


def big_instance(n: int = 240, k: int = 4) -> CostModel:
    nodes = Nodes(Node("dev", flops=5e9), [Node(f"e{i}", flops=5e10 * (1 + i % 2))
                                           for i in range(k)], Node("cloud", flops=2e12))
    network = Network(Link.mbps(40, ms=10), Link.mbps(1000, ms=0.5), Link.mbps(30, ms=20))
    return CostModel(chain_graph(n, seed=1), nodes, network)


# The property tests below run once per backend subclass with the same strategy; that is the
# point, so hypothesis's check against one test method called from several classes is off.
def examples(count: int) -> settings:
    return settings(max_examples=count, suppress_health_check=[
        *settings.default.suppress_health_check, HealthCheck.differing_executors])


class MilpProperties:
    """Properties every MILP backend must have; subclasses set ``solver``."""

    solver = "highs"
    requires = "ortools"

    @pytest.fixture(autouse=True)
    def _backend_installed(self):
        if importlib.util.find_spec(self.requires) is None:
            pytest.skip(f"{self.requires} is not installed")

    @examples(40)
    @given(instances(max_layers=8))
    def test_matches_brute_force_and_evaluate(self, instance):
        cost = CostModel(*instance)
        best = solve_brute(cost, pins={})
        plan = solve_milp(cost, pins={}, solver=self.solver)
        assert plan.info.status == "optimal"
        assert same(plan.latency, best.latency)
        assert same(plan.info.objective, plan.latency)
        again = evaluate_assignment(cost, plan.assignment, plan.tiles)
        assert same(again.latency, plan.latency)
        assert plan.info.bound <= plan.latency * (1 + 1e-6) + 1e-12

    @examples(15)
    @given(instances(max_layers=9))
    def test_never_worse_than_baselines(self, instance):
        cost = CostModel(*instance)
        plan = solve_cost(cost, "milp", solver=self.solver)
        rivals = [baselines.solve_device, baselines.solve_edge, baselines.solve_cloud]
        rivals += [getattr(baselines, n) for n in ("solve_neurosurgeon", "solve_dads")
                   if hasattr(baselines, n)]
        for rival in rivals:
            assert plan.latency <= rival(cost, pins={}).latency * (1 + 1e-9) + 1e-12

    @examples(25)
    @given(pinned_instances())
    def test_pins_match_brute_force(self, case):
        cost, pins = case
        try:
            best = solve_brute(cost, pins=pins)
        except InfeasibleError:
            with pytest.raises(InfeasibleError, match="pins"):
                solve_milp(cost, pins=pins, solver=self.solver)
            return
        plan = solve_milp(cost, pins=pins, solver=self.solver)
        assert same(plan.latency, best.latency)
        for name, tier in pins.items():
            assert plan.assignment[name] == tier

    @examples(25)
    @given(capped_instances())
    def test_memory_caps_match_brute_force(self, cost):
        try:
            best = solve_brute(cost, pins={})
        except InfeasibleError:
            with pytest.raises(InfeasibleError, match="memory caps"):
                solve_milp(cost, pins={}, solver=self.solver)
            return
        plan = solve_milp(cost, pins={}, solver=self.solver)
        assert same(plan.latency, best.latency)
        for node in cost.nodes.all:
            if node.memory is not None:
                assert plan.evaluation.memory[node.name] <= node.memory

    def test_contradictory_pins_name_the_family(self):
        cost = big_instance(12, 2)
        with pytest.raises(InfeasibleError, match="pins"):
            solve_milp(cost, pins={"l1": "cloud", "l4": "device"}, solver=self.solver)

    def test_memory_caps_too_small_everywhere(self):
        cost = big_instance(12, 2)
        nodes = cost.nodes
        for node in nodes.all:
            nodes = nodes.replace_node(node.name, memory=1000)
        capped = CostModel(cost.graph, nodes, cost.network)
        with pytest.raises(InfeasibleError, match="memory caps"):
            solve_milp(capped, pins={}, solver=self.solver)

    def test_tiny_time_limit_is_reported_honestly(self):
        cost = big_instance(120, 4)
        model = MilpModel(cost, solver=self.solver)
        device = baselines.solve_device(cost, pins={})
        try:
            plan = model.solve(time_limit=0.01)
        except SolverError as err:
            assert "time" in str(err)
            plan = None
        hinted = model.solve(time_limit=0.01, hint=device)
        exact = model.solve()
        assert exact.info.status == "optimal"
        for found in filter(None, (plan, hinted)):
            assert found.info.status in {"optimal", "timed_out", "feasible"}
            assert found.latency >= exact.latency * (1 - 1e-9)
            if found.info.status == "optimal":
                assert same(found.latency, exact.latency)
            elif found.info.bound is not None:
                assert found.info.bound <= exact.latency * (1 + 1e-6)
                assert found.info.gap == pytest.approx(
                    max(0.0, (found.latency - found.info.bound) / found.latency), abs=1e-9)
        assert hinted.latency <= device.latency

    @examples(6)
    @given(instances(max_layers=7, min_edge=2))
    def test_hints_are_accepted(self, instance):
        cost = CostModel(*instance)
        best = solve_brute(cost, pins={})
        for hint in (best, baselines.solve_cloud(cost, pins={}),
                     Plan(best.assignment, tiles=best.tiles)):
            plan = solve_milp(cost, pins={}, solver=self.solver, hint=hint)
            assert same(plan.latency, best.latency)

    def test_recosting_in_place_matches_a_fresh_model(self):
        cost = big_instance(30, 3)
        model = MilpModel(cost, solver=self.solver)
        first = model.solve()
        changes = [("set_link", "edge_cloud", Link.mbps(2, ms=80)),
                   ("set_link", "edge_edge", Link.mbps(50, ms=5)),
                   ("set_node", "e1", {"flops": 1e9}),
                   ("set_link", "device_cloud", Link.mbps(100, ms=5)),
                   ("set_node", "e2", {"memory": 10**5})]
        for method, name, value in changes:
            if method == "set_link":
                model.set_link(name, value)
            else:
                model.set_node(name, **value)
            fresh = solve_milp(model.cost, pins={}, solver=self.solver)
            again = model.solve(hint=first)
            assert again.info.status == "optimal"
            assert same(again.latency, fresh.latency)
            first = again


class TestHighs(MilpProperties):
    solver = "highs"


class TestScip(MilpProperties):
    solver = "scip"


class TestCbc(MilpProperties):
    solver = "cbc"
    requires = "pulp"


def test_export_mps_reads_back_to_the_same_optimum(tmp_path):
    from ortools.math_opt.io.python import mps_converter
    from ortools.math_opt.python import mathopt

    cost = big_instance(20, 3)
    plan = solve_milp(cost, pins={"l2": "edge"}, solver="highs")
    path = export_model(cost.graph, cost.nodes, cost.network, tmp_path / "m.mps",
                        pins={"l2": "edge"})
    model = mathopt.Model.from_model_proto(mps_converter.mps_to_model_proto(path.read_text()))
    result = mathopt.solve(model, mathopt.SolverType.HIGHS,
                           params=mathopt.SolveParameters(relative_gap_tolerance=0.0,
                                                          absolute_gap_tolerance=0.0))
    assert result.termination.reason == mathopt.TerminationReason.OPTIMAL
    assert result.objective_value() * OBJECTIVE_UNIT == pytest.approx(plan.latency, rel=1e-6)


def test_export_lp_is_solved_by_cbc_to_the_same_optimum(tmp_path):
    pulp = pytest.importorskip("pulp")
    cost = big_instance(20, 3)
    plan = solve_milp(cost, pins={}, solver="highs")
    path = export_model(cost.graph, cost.nodes, cost.network, tmp_path / "m.lp")
    cbc = pulp.apis.coin_api.pulp_cbc_path
    out = subprocess.run([cbc, str(path), "-ratio", "0", "-allow", "0", "solve"],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"Objective value:\s*([-+0-9.eE]+)", out)
    assert found
    assert float(found.group(1)) * OBJECTIVE_UNIT == pytest.approx(plan.latency, rel=1e-6)


def test_export_rejects_unknown_formats(tmp_path):
    cost = big_instance(6, 1)
    with pytest.raises(ValueError, match=r"\.mps or \.lp"):
        export_model(cost.graph, cost.nodes, cost.network, tmp_path / "m.txt")


def test_unknown_solver_is_rejected():
    with pytest.raises(ValueError, match="highs"):
        solve_milp(big_instance(6, 1), pins={}, solver="cp-sat")


@pytest.mark.parametrize("scenario", sorted(builtin_scenarios()))
def test_backends_agree_on_a_zoo_model_under_every_shipped_scenario(scenario):
    pytest.importorskip("torch")
    import d3opt

    graph = d3opt.from_torch(d3opt.zoo.get("tinycnn"), d3opt.zoo.example_input("tinycnn"))
    sc = d3opt.scenario(scenario)
    cost = CostModel(graph, sc.nodes, sc.network)
    plans = {s: solve_milp(cost, pins={}, solver=s) for s in ("highs", "scip", "cbc")}
    reference = plans["highs"].latency
    for solver, plan in plans.items():
        assert plan.info.status == "optimal", solver
        assert same(plan.latency, reference), solver
