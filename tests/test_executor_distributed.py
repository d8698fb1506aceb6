"""One process per node over torch.distributed (gloo on loopback): same checks, and faults."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import torch

import d3opt
from d3opt.executor import ExecutionError, Executor
from d3opt.tiling import candidate_blocks


def _setup(name: str, side: int, k: int):
    model = d3opt.zoo.get(name)
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(2))
    graph = d3opt.from_torch(model, x)
    wifi = d3opt.scenario("wifi")
    nodes = d3opt.Nodes(wifi.nodes.device, [d3opt.Node(f"e{i}", flops=(2 + i) * 40e9)
                                            for i in range(k)], wifi.nodes.cloud)
    return model, x, graph, nodes, wifi.network


def _three_tier_tiled(graph, nodes, network, k):
    blocks = [b for b in candidate_blocks(graph, max_segments=3)
              if graph[b.exit].out_shape[2] >= k and graph.index[b.layers[0]] > 1]
    block = max(blocks, key=lambda b: len(b.layers))
    first, last = graph.index[block.layers[0]], graph.index[block.exit]
    tiers = {n: "device" if graph.index[n] < first else "edge" if graph.index[n] <= last
             else "cloud" for n in graph.order}
    plan = d3opt.Plan(tiers, tiles=[d3opt.TiledBlock(block.layers, k)])
    return d3opt.score(plan, d3opt.CostModel(graph, nodes, network))


# ResNet-18 and VGG16 at 64x64 inputs (not 224x224) to keep the suite fast.
@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_distributed_matches_prediction(name):
    model, x, graph, nodes, network = _setup(name, 64, 2)
    runner = Executor(model, x, graph=graph, nodes=nodes, network=network)
    plan = _three_tier_tiled(graph, nodes, network, 2)
    report = runner.validate(plan, mode="distributed", timeout=90)
    assert report.ok, str(report)
    assert report.mode == "distributed" and report.max_abs_error <= 1e-5
    assert all(t.payload == t.predicted for t in report.links)
    assert {"device->edge", "edge->cloud", "edge<->edge"} <= {t.link for t in report.links}
    assert report.total_time > 0 and all(s.wall is not None for s in report.stages)
    assert {s.node for s in report.stages} == {n.name for n in nodes.all}


def test_distributed_four_edge_nodes_float64():
    model, x, graph, nodes, network = _setup("tinycnn", 32, 4)
    runner = Executor(model, x, graph=graph, nodes=nodes, network=network, dtype=torch.float64)
    plan = _three_tier_tiled(graph, nodes, network, 4)
    report = runner.validate(plan, mode="distributed", timeout=60)
    assert report.ok and report.max_abs_error <= 1e-10, str(report)
    assert len([s for s in report.stages if "[" in s.stage]) == 4


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_dead_or_silent_peer_is_a_clear_error(sig):
    model, x, graph, nodes, network = _setup("tinycnn", 32, 2)
    runner = Executor(model, x, graph=graph, nodes=nodes, network=network)
    plan = _three_tier_tiled(graph, nodes, network, 2)

    def fault(pids):  # the cloud dies (or stops answering) while the others run
        os.kill(pids[nodes.cloud.name], sig)

    start = time.monotonic()
    with pytest.raises(ExecutionError, match=re.escape(nodes.cloud.name) if sig == signal.SIGKILL
                       else "did not finish"):
        runner.validate(plan, mode="distributed", timeout=10, on_start=fault)
    assert time.monotonic() - start < 30
