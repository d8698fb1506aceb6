"""evaluate() against latencies computed by hand on small hand-written cases."""

import math

import pytest

from d3opt import (CostModel, Layer, LayerGraph, Link, Network, Node, Nodes, Plan, PlanError,
                   Tier, TiledBlock, Window, evaluate, score)

D, E, C = Tier.DEVICE, Tier.EDGE, Tier.CLOUD


def chain(*flops, out=1000):
    """input -> a -> b -> ... with the given FLOPs; every tensor ``out`` bytes."""
    layers = [Layer("x", "input", out_bytes=out)]
    names = [chr(ord("a") + i) for i in range(len(flops))]
    layers += [Layer(n, "other", flops=f, out_bytes=out) for n, f in zip(names, flops)]
    edges = list(zip(["x", *names], names))
    return LayerGraph(layers, edges)


@pytest.fixture
def nodes():
    return Nodes(Node("dev", flops=1e9), [Node("e0", flops=1e10), Node("e1", flops=1e10)],
                 Node("cloud", flops=1e11))


@pytest.fixture
def net():
    return Network(device_edge=Link(1e4, 0.01), edge_edge=Link(1e6, 0.001),
                   edge_cloud=Link(1e5, 0.1))


def test_all_on_device_costs_only_compute(nodes, net):
    g = chain(1e9, 2e9)
    ev = evaluate(Plan({"x": D, "a": D, "b": D}), g, nodes, net)
    assert ev.latency == pytest.approx(3.0)
    assert all(v == 0 for v in ev.link_bytes.values())


def test_result_returned_from_edge(nodes, net):
    g = chain(1e9, 2e9)
    ev = evaluate(Plan({"x": D, "a": D, "b": E}), g, nodes, net)
    # device a: 1 s; a's 1000 B to edge: 0.01 + 0.1; b on edge: 0.2 s; result back: 0.11
    assert ev.breakdown["device"] == pytest.approx(1.0)
    assert ev.breakdown["device->edge"] == pytest.approx(0.11)
    assert ev.breakdown["edge"] == pytest.approx(0.2)
    assert ev.breakdown["return"] == pytest.approx(0.11)
    assert ev.latency == pytest.approx(1.42)
    assert ev.link_bytes["edge->device"] == 1000


def test_relay_through_edge_without_direct_link(nodes, net):
    g = chain(1e9, out=2000)
    ev = evaluate(Plan({"x": D, "a": C}), g, nodes, net)
    up = (0.01 + 2000 / 1e4) + (0.1 + 2000 / 1e5)
    down = (0.1 + 2000 / 1e5) + (0.01 + 2000 / 1e4)
    assert ev.latency == pytest.approx(up + 1e9 / 1e11 + down)
    assert ev.link_bytes["device->edge"] == ev.link_bytes["edge->cloud"] == 2000
    assert ev.backbone_bytes == 4000


def test_direct_device_cloud_link_bypasses_edge(nodes, net):
    direct = net.with_link("device_cloud", Link(5e3, 0.05))
    g = chain(1e9, out=2000)
    ev = evaluate(Plan({"x": D, "a": C}), g, nodes, direct)
    assert ev.link_bytes["device->edge"] == ev.link_bytes["edge->cloud"] == 0
    assert ev.latency == pytest.approx(2 * (0.05 + 2000 / 5e3) + 0.01)


def test_fan_out_tensor_sent_once_per_destination(nodes, net):
    # x feeds a, b and c; a, b on the edge read it: one copy, one message.
    layers = [Layer("x", "input", out_bytes=1000)] + [
        Layer(n, "other", flops=1e9, out_bytes=10) for n in "abc"
    ] + [Layer("j", "other", flops=0, out_bytes=10)]
    g = LayerGraph(layers, [("x", "a"), ("x", "b"), ("x", "c"), ("a", "j"), ("b", "j"),
                            ("c", "j")])
    ev = evaluate(Plan({"x": D, "a": E, "b": E, "c": D, "j": E}), g, nodes, net)
    # x (1000 B) and c (10 B) travel in ONE device->edge message: one latency.
    assert ev.link_bytes["device->edge"] == 1010
    assert ev.breakdown["device->edge"] == pytest.approx(0.01 + 1010 / 1e4)
    assert ev.breakdown["device"] == pytest.approx(1.0)
    assert ev.breakdown["edge"] == pytest.approx(0.2)
    assert ev.latency == pytest.approx(1.0 + 0.111 + 0.2 + (0.01 + 10 / 1e4))


def test_link_latency_paid_once_per_message(nodes):
    slow = Network(Link(1e9, 0.5), Link(1e9, 0.5), Link(1e9, 0.5))
    layers = [Layer("x", "input", out_bytes=1)] + [
        Layer(n, "other", flops=0, out_bytes=1) for n in "abcd"
    ]
    g = LayerGraph(layers, [("x", "a"), ("x", "b"), ("a", "c"), ("b", "c"), ("c", "d")])
    ev = evaluate(Plan({"x": D, "a": D, "b": D, "c": E, "d": E}), g, nodes, slow)
    assert ev.breakdown["device->edge"] == pytest.approx(0.5 + 2 / 1e9)
    assert ev.latency == pytest.approx(2 * 0.5 + 3 / 1e9)


def test_tiled_block_time_and_lan_bytes(nodes, net):
    w = Window(kernel=3, stride=1, padding=1)
    g = LayerGraph(
        [Layer("x", "input", out_shape=(1, 1, 8, 8)),
         Layer("c1", "conv", flops=8e8, out_shape=(1, 1, 8, 8), window=w),
         Layer("c2", "conv", flops=8e8, out_shape=(1, 1, 8, 8), window=w)],
        [("x", "c1"), ("c1", "c2")],
    )
    plan = Plan({"x": D, "c1": E, "c2": E}, tiles=[TiledBlock(("c1", "c2"), 2)])
    ev = evaluate(plan, g, nodes, net)
    (block,) = ev.blocks
    # Equal nodes split the 8 output rows 4/4. e1 computes rows 4..7 of c2, which need rows
    # 3..7 of c1 and rows 2..7 of x: it receives 6 rows (6*8*4 B) and returns 4 rows.
    e0, e1 = block.tiles
    assert (e0.out_rows, e1.out_rows) == ((0, 3), (4, 7))
    assert e1.in_rows == (2, 7)
    assert (e1.send_bytes, e1.return_bytes) == (192, 128)
    compute_e1 = 0.08 * 5 / 8 + 0.08 * 4 / 8
    expected = max(0.08 * 5 / 8 + 0.08 * 4 / 8,
                   (0.001 + 192 / 1e6) + compute_e1 + (0.001 + 128 / 1e6))
    assert ev.breakdown["edge"] == pytest.approx(expected)
    assert ev.link_bytes["edge<->edge"] == 320
    assert ev.memory["e1"] == 0


def test_shared_lan_serialises_transfers(nodes, net):
    w = Window(kernel=1)
    g = LayerGraph([Layer("x", "input", out_shape=(1, 1, 6, 6)),
                    Layer("c", "conv", flops=6e8, out_shape=(1, 1, 6, 6), window=w)],
                   [("x", "c")])
    three = Nodes(nodes.device, [Node(f"e{i}", flops=1e10) for i in range(3)], nodes.cloud)
    plan = Plan({"x": D, "c": E}, tiles=[TiledBlock(("c",), 3)])
    shared = Network(net.device_edge, net.edge_edge, net.edge_cloud, lan="shared")
    ev = evaluate(plan, g, three, shared)
    msg = 0.001 + 2 * 6 * 4 / 1e6  # two rows of 6 floats each way
    assert ev.breakdown["edge"] == pytest.approx(2 * msg + 0.06 / 3 + 2 * msg)


def test_pins_and_memory_caps_are_checked(nodes, net):
    g = chain(1e9)
    with pytest.raises(PlanError, match="'a' is pinned to device"):
        evaluate(Plan({"x": D, "a": E}, pins={"a": D}), g, nodes, net)
    capped = Nodes(Node("dev", flops=1e9, memory=10), nodes.edge, nodes.cloud)
    heavy = LayerGraph([Layer("x", "input", out_bytes=4),
                        Layer("a", "linear", flops=1, param_bytes=100, out_bytes=4)], [("x", "a")])
    with pytest.raises(PlanError, match="'dev'.*memory cap"):
        evaluate(Plan({"x": D, "a": D}), heavy, capped, net)
    assert evaluate(Plan({"x": D, "a": E}), heavy, capped, net).memory["e0"] == 100


@pytest.mark.parametrize(
    "assignment, message",
    [({"x": D, "a": E, "b": D}, "backwards"), ({"x": E, "a": E, "b": E}, "input layer"),
     ({"x": D, "a": D}, "no tier"), ({"x": D, "a": D, "b": D, "zz": D}, "not in the graph")],
)
def test_invalid_plans_are_rejected(nodes, net, assignment, message):
    with pytest.raises(PlanError, match=message):
        evaluate(Plan(assignment), chain(1.0, 1.0), nodes, net)


def test_invalid_tiles_are_rejected(nodes, net):
    g = chain(1.0)
    with pytest.raises(PlanError, match="cannot be tiled"):
        evaluate(Plan({"x": D, "a": E}, tiles=[TiledBlock(("a",), 2)]), g, nodes, net)


def test_score_and_json_round_trip(nodes, net):
    g = chain(1e9, 1e9)
    plan = score(Plan({"x": D, "a": E, "b": C}, method="hand"), CostModel(g, nodes, net))
    again = Plan.from_json(plan.to_json())
    assert again.assignment == plan.assignment and again.method == "hand"
    assert math.isclose(evaluate(again, g, nodes, net).latency, plan.latency)
    with pytest.raises(PlanError, match="not been scored"):
        _ = again.latency
