"""The executor runs every plan exactly: output error and bytes per link as predicted."""

from __future__ import annotations

import pytest
import torch

import d3opt
from d3opt.errors import PlanError
from d3opt.executor import Executor, validate
from d3opt.tiling import candidate_blocks

#: Zoo models at reduced input sizes (64x64; 32x32 for the deepest ones) to keep it fast.
SIDE = {"tinycnn": 32, "googlenet": 32, "resnet50": 32, "mobilenet_v2": 32}
METHODS = ("device", "edge", "cloud", "neurosurgeon", "dads", "hpa", "milp")


def _setup(name: str, k: int = 4):
    model = d3opt.zoo.get(name)
    side = SIDE.get(name, 64)
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    graph = d3opt.from_torch(model, x)
    wifi = d3opt.scenario("wifi")
    edge = [d3opt.Node(f"e{i}", flops=(1 + i) * 50e9) for i in range(k)]
    nodes = d3opt.Nodes(wifi.nodes.device, edge, wifi.nodes.cloud)
    return model, x, graph, nodes, wifi.network


def _tiled_plan(graph, nodes, network, k):
    """A hand-made plan: the largest candidate block with at least k rows tiled on the edge."""
    blocks = [b for b in candidate_blocks(graph) if graph[b.exit].out_shape[2] >= k]
    block = max(blocks, key=lambda b: len(b.layers))
    first, last = graph.index[block.layers[0]], graph.index[block.exit]
    tiers = {n: "device" if graph.index[n] < first else "edge" if graph.index[n] <= last
             else "cloud" for n in graph.order}
    plan = d3opt.Plan(tiers, tiles=[d3opt.TiledBlock(block.layers, k)])
    return d3opt.score(plan, d3opt.CostModel(graph, nodes, network))


def _check(report, expect_tiles: bool = False):
    assert report.ok, str(report)
    assert all(t.payload == t.predicted for t in report.links)
    assert all(0 < t.header <= 80 * t.messages * 4 for t in report.links if t.messages)
    if expect_tiles:
        assert any(t.link == "edge<->edge" and t.payload > 0 for t in report.links)


@pytest.mark.parametrize("name", d3opt.zoo.names(include_demo=True))
def test_every_plan_runs_exactly(name):
    """Every method's plan and hand-made tiles on 2 and 4 edge nodes, float32."""
    model, x, graph, nodes, network = _setup(name)
    runner = Executor(model, x, graph=graph, nodes=nodes, network=network)
    plans = [d3opt.solve(graph, nodes, network, method=m,
                         **({"time_limit": 20} if m == "milp" else {})) for m in METHODS]
    plans += [_tiled_plan(graph, nodes, network, k) for k in (2, 4)]
    for plan in plans:
        report = runner.validate(plan)
        _check(report, expect_tiles=bool(plan.tiles))
        assert report.dtype == "float32" and report.max_abs_error <= 1e-5
        assert len([s for s in report.stages if "[" in s.stage]) == sum(t.k for t in plan.tiles)


@pytest.mark.parametrize("name", ["tinycnn", "resnet18"])
def test_float64_is_exact(name):
    model, x, graph, nodes, network = _setup(name, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner = Executor(model, x, graph=graph, nodes=nodes, network=network, dtype=torch.float64)
    for k in (2, 4):
        plan = _tiled_plan(graph, nodes, network, k)
        report = runner.validate(plan)
        _check(report, expect_tiles=True)
        assert report.dtype == "float64" and report.max_abs_error <= 1e-10
        # predictions follow the 8-byte elements
        f32 = d3opt.evaluate(plan, graph, nodes, network).link_bytes
        assert {t.link: t.predicted for t in report.links}["device->edge"] == \
            2 * f32["device->edge"]
    after = model.state_dict()  # the user's model was not touched
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == before[k].dtype
               for k in before)


def test_tiles_need_a_system():
    model, x, graph, nodes, network = _setup("tinycnn", 2)
    plan = _tiled_plan(graph, nodes, network, 2)
    with pytest.raises(PlanError, match="nodes="):
        validate(plan, model, x, graph=graph)


def test_untiled_plan_without_system_and_report_text():
    model, x, graph, _, _ = _setup("tinycnn")
    plan = d3opt.Plan({n: "device" if graph.index[n] < 3 else "cloud" for n in graph.order})
    report = validate(plan, model, x)
    assert report.ok
    text = str(report)
    assert "OK" in text and "device->edge" in text and "edge->cloud" in text
    assert {t.link for t in report.links} == {"device->edge", "edge->cloud", "cloud->edge",
                                              "edge->device"}


def test_direct_device_cloud_link():
    model, x, graph, nodes, network = _setup("tinycnn")
    network = network.with_link("device_cloud", d3opt.Link.mbps(10, ms=40))
    plan = d3opt.Plan({n: "device" if graph.index[n] < 3 else "cloud" for n in graph.order})
    report = validate(plan, model, x, graph=graph, nodes=nodes, network=network)
    assert report.ok
    assert {t.link for t in report.links} == {"device->cloud", "cloud->device"}
