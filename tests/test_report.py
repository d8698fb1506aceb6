"""Plan tables: layer ranges per tier, tiled blocks, stage latencies and link bytes."""

from __future__ import annotations

import math

from d3opt.cost import CostModel
from d3opt.graph import Layer, LayerGraph, Window
from d3opt.plan import Plan, TiledBlock, score
from d3opt.report import format_table, plan_table
from d3opt.system import Link, Network, Node, Nodes

W = Window(kernel=3, stride=1, padding=1)


def instance():
    graph = LayerGraph(
        [Layer("x", "input", out_shape=(1, 3, 16, 16)),
         Layer("c0", "conv", flops=1e9, out_shape=(1, 8, 16, 16), window=W),
         Layer("c1", "conv", flops=2e9, out_shape=(1, 8, 16, 16), window=W),
         Layer("c2", "conv", flops=3e9, out_shape=(1, 8, 16, 16), window=W),
         Layer("fc", "linear", flops=5e8, out_bytes=40)],
        [("x", "c0"), ("c0", "c1"), ("c1", "c2"), ("c2", "fc")],
    )
    nodes = Nodes(Node("dev", flops=1e10), [Node("e0", flops=1e11), Node("e1", flops=1e11)],
                  Node("cl", flops=1e12))
    network = Network(Link(1e6, 0.01), Link(1e8, 0.001), Link(1e7, 0.02))
    return graph, CostModel(graph, nodes, network)


def rows(text: str, first: str) -> list[list[str]]:
    """Lines of the layer and tiled-block tables (five columns or more) starting with first."""
    return [line.split() for line in text.splitlines()
            if line.split()[:1] == [first] and len(line.split()) >= 5]


def test_plan_table_sections():
    graph, cost = instance()
    plan = score(Plan({"x": "device", "c0": "device", "c1": "edge", "c2": "edge",
                       "fc": "cloud"}, tiles=[TiledBlock(("c1", "c2"), 2)]), cost)
    text = plan_table(plan, graph)
    assert text.splitlines()[0].startswith(f"latency {plan.latency * 1e3:.3f} ms")
    assert rows(text, "device") == [["device", "x", "c0", "2", "1.000"]]
    assert rows(text, "edge") == [["edge", "c1", "c2", "2", "5.000", "k=2"]]
    assert rows(text, "cloud") == [["cloud", "fc", "fc", "1", "0.500"]]
    block = rows(text, "c1")
    assert block[0][:3] == ["c1", "c2", "2"] and block[0][3:5] == ["e0,", "e1"]
    sections = {part.split()[0]: part.splitlines()[1:] for part in text.split("\n\n")}
    stages = {r[0]: float(r[1]) for r in map(str.split, sections["stage"])}
    assert math.isclose(sum(stages.values()), plan.latency * 1e3, rel_tol=1e-4)
    assert {s for s, v in plan.breakdown.items() if v > 0} == set(stages)
    kb = {r[0]: float(r[1]) for r in map(str.split, sections["link"][:-1])}
    assert kb == {k: round(v / 1e3, 3) for k, v in plan.link_bytes.items() if v}
    assert "edge<->edge" in kb  # the tiles' halo traffic
    assert text.splitlines()[-1] == f"backbone (edge<->cloud): {plan.backbone_bytes / 1e3:.3f} KB"


def test_unscored_plan_shows_only_layer_ranges():
    graph, _ = instance()
    plan = Plan({"x": "device", "c0": "edge", "c1": "edge", "c2": "cloud", "fc": "cloud"})
    text = plan_table(plan, graph)
    assert text.splitlines()[0].split() == ["tier", "first", "last", "layers", "GFLOPs"]
    assert [r[0] for r in (line.split() for line in text.splitlines()[1:])] == [
        "device", "edge", "cloud"]
    assert "latency" not in text


def test_runs_split_when_a_tier_comes_back_in_topological_order():
    # Two branches: the order visits device, edge, device again.
    graph = LayerGraph(
        [Layer("x", "input", out_bytes=4), Layer("a", "linear", out_bytes=4),
         Layer("b", "linear", out_bytes=4), Layer("y", "add", out_bytes=4)],
        [("x", "a"), ("x", "b"), ("a", "y"), ("b", "y")],
    )
    plan = Plan({"x": "device", "a": "edge", "b": "device", "y": "edge"})
    tiers = [line.split()[0] for line in plan_table(plan, graph).splitlines()[1:]]
    assert tiers == ["device", "edge", "device", "edge"]


def test_format_table_aligns_columns():
    text = format_table(["a", "value"], [["long name", 1.5], ["x", 10]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1  # numbers right-aligned to one width
    assert lines[1].endswith("  1.5") and lines[2].endswith("   10")
