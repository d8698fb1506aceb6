"""compare(): rows re-scored by evaluate, gaps against the MILP, table text, CLI."""

import math

import pytest
from hypothesis import given, settings
from strategies import instances

import d3opt
from d3opt import Layer, LayerGraph, Link, Network, Node, Nodes, evaluate
from d3opt.compare import compare


def small():
    g = LayerGraph([Layer("x", "input", out_bytes=100_000),
                    Layer("a", "conv", flops=1e8, out_bytes=1_000),
                    Layer("b", "linear", flops=4e10, out_bytes=4)], [("x", "a"), ("a", "b")])
    nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
    return g, nodes, Network(Link(1e5, 0.01), Link(1e8), Link(1e6, 0.02))


@settings(max_examples=20)
@given(instances(max_layers=7, max_edge=2))
def test_every_row_is_the_evaluated_latency_and_gaps_are_against_the_milp(instance):
    graph, nodes, network = instance
    result = compare(graph, nodes, network, methods=("device", "cloud", "hpa", "milp"))
    milp = result.row("milp")
    assert [r.method for r in result.rows] == ["device", "cloud", "hpa", "milp"]
    for row in result.rows:
        if row.latency is None:
            assert row.error
            continue
        ev = evaluate(row.plan, graph, nodes, network)
        assert math.isclose(ev.latency, row.latency, rel_tol=1e-9, abs_tol=1e-12)
        assert row.backbone_bytes == ev.backbone_bytes
        assert math.isclose(sum(row.breakdown.values()), row.latency, rel_tol=1e-9,
                            abs_tol=1e-12)
        assert row.solve_time >= 0
        if milp.latency and milp.latency > 0:
            assert math.isclose(row.gap, row.latency / milp.latency - 1, rel_tol=1e-9,
                                abs_tol=1e-12)
    if result.milp_status == "optimal":
        assert all(r.gap >= -1e-6 for r in result.rows if r.gap is not None)


def test_gap_is_none_without_the_milp_and_best_is_the_fastest():
    g, nodes, net = small()
    result = compare(g, nodes, net, methods=("device", "edge", "cloud", "hpa"))
    assert all(r.gap is None for r in result.rows)
    assert result.best().latency == min(r.latency for r in result.rows)
    assert result.milp_status is None


def test_infeasible_method_gets_an_error_row_not_an_exception():
    g, nodes, net = small()
    result = compare(g, nodes, net, methods=("device", "hpa"), pins={"b": "cloud"})
    assert result.row("device").latency is None
    assert "pins" in result.row("device").error
    assert result.row("hpa").plan.assignment["b"].name == "CLOUD"
    text = result.table()
    assert "device" in text and "pins" in text


def test_unknown_method_is_rejected_before_solving():
    g, nodes, net = small()
    with pytest.raises(ValueError, match="unknown method"):
        compare(g, nodes, net, methods=("hpa", "magic"))


def test_table_lists_every_method_with_milliseconds():
    g, nodes, net = small()
    result = compare(g, nodes, net, methods=("device", "hpa"), label="tiny")
    lines = result.table().splitlines()
    assert lines[0] == "tiny"
    assert lines[1].split()[:3] == ["method", "latency", "ms"]
    device = next(line for line in lines if line.startswith("device"))
    assert f"{result.row('device').latency * 1e3:.3f}" in device


def test_lazy_public_name():
    assert d3opt.compare is compare


def test_cli_compare_prints_the_table(capsys):
    from d3opt.cli import main

    status = main(["compare", "--model", "tinycnn", "--scenario", "wired",
                   "--methods", "device,cloud,hpa"])
    out = capsys.readouterr().out
    assert status == 0
    assert "scenario wired" in out
    assert all(any(line.startswith(m) for line in out.splitlines())
               for m in ("device", "cloud", "hpa"))


def test_cli_compare_rejects_profile_flags_without_a_profile(capsys):
    from d3opt.cli import main

    assert main(["compare", "--model", "tinycnn", "--device", "device-raspi4"]) == 2
    assert "--profile" in capsys.readouterr().err
