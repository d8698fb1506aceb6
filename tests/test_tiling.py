"""Halo math of the vertical separation module (d3opt.tiling) against cases worked by hand."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import math

import numpy as np
from strategies import instances

from d3opt import CostModel, Layer, LayerGraph, PlanError, Tier, Window
from d3opt.tiling import (band_sizes, block_cost, block_times, candidate_blocks, make_block,
                          rows_needed, split_rows, tiling_geometry)


def chain_of(height, windows, channels=4):
    """input (height x height) followed by one conv per window; heights follow the windows."""
    layers = [Layer("x", "input", out_shape=(1, channels, height, height))]
    h = height
    for i, w in enumerate(windows):
        h = out_height(h, w)
        layers.append(Layer(f"c{i}", "conv", out_shape=(1, channels, h, h), window=w))
    names = [layer.name for layer in layers]
    graph = LayerGraph(layers, list(zip(names, names[1:])))
    return graph, make_block(graph, names[1:])


def out_height(h, w):
    k, s, p, d = w.kernel[0], w.stride[0], w.padding[0], w.dilation[0]
    span = h + 2 * p - d * (k - 1) - 1
    if w.ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= h + p:  # PyTorch: the last window must start inside the input
            out -= 1
        return out
    return span // s + 1


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
@given(a=st.integers(0, 19), length=st.integers(0, 19))
def test_stacked_same_convs_widen_the_band_by_one_row_per_layer(depth, a, length):
    graph, block = chain_of(20, [Window(3, 1, 1)] * depth)
    b = min(a + length, 19)
    need = rows_needed(graph, block, (a, b))
    assert need["x"] == (max(a - depth, 0), min(b + depth, 19))
    for i in range(depth):  # layer c_i is (depth - 1 - i) layers below the exit
        below = depth - 1 - i
        assert need[f"c{i}"] == (max(a - below, 0), min(b + below, 19))


def test_stride_two_conv_doubles_and_shifts_the_rows():
    graph, block = chain_of(16, [Window(3, 2, 1)])  # 16 -> 8 rows
    assert graph["c0"].out_shape[2] == 8
    # output rows 2..3 read input rows 2*2-1 .. 3*2-1+2
    assert rows_needed(graph, block, (2, 3))["x"] == (3, 7)
    assert rows_needed(graph, block, (0, 0))["x"] == (0, 1)  # -1 clamped to the border
    assert rows_needed(graph, block, (7, 7))["x"] == (13, 15)


def test_pooling_without_overlap_reads_disjoint_rows():
    graph = LayerGraph([Layer("x", "input", out_shape=(1, 2, 8, 8)),
                        Layer("p", "pool", out_shape=(1, 2, 4, 4), window=Window(2, 2, 0))],
                       [("x", "p")])
    block = make_block(graph, ["p"])
    bands = [rows_needed(graph, block, (r, r))["x"] for r in range(4)]
    assert bands == [(0, 1), (2, 3), (4, 5), (6, 7)]


def test_ceil_mode_pooling_clamps_the_last_partial_window():
    w = Window(2, 2, 0, ceil_mode=True)
    assert out_height(7, w) == 4
    graph = LayerGraph([Layer("x", "input", out_shape=(1, 2, 7, 7)),
                        Layer("p", "pool", out_shape=(1, 2, 4, 4), window=w)], [("x", "p")])
    block = make_block(graph, ["p"])
    assert rows_needed(graph, block, (3, 3))["x"] == (6, 6)  # window rows 6..7, row 7 absent
    assert rows_needed(graph, block, (2, 3))["x"] == (4, 6)


def test_overlapping_max_pool_of_resnet_stem():
    w = Window(3, 2, 1)  # 112 -> 56 as in ResNet
    graph, block = chain_of(112, [w])
    assert graph["c0"].out_shape[2] == 56
    assert rows_needed(graph, block, (0, 27))["x"] == (0, 55)
    assert rows_needed(graph, block, (28, 55))["x"] == (55, 111)


def test_dilation_spreads_the_receptive_field():
    graph, block = chain_of(20, [Window(3, 1, 2, dilation=2)])
    assert graph["c0"].out_shape[2] == 20
    assert rows_needed(graph, block, (5, 9))["x"] == (3, 11)
    assert rows_needed(graph, block, (0, 0))["x"] == (0, 2)


def test_non_divisible_heights_and_mixed_strides():
    # 15 rows -> stride 2 (k3 p1) -> 8 rows -> k3 s1 p0 -> 6 rows
    graph, block = chain_of(15, [Window(3, 2, 1), Window(3, 1, 0)])
    assert [graph[n].out_shape[2] for n in ("c0", "c1")] == [8, 6]
    need = rows_needed(graph, block, (4, 5))
    assert need["c0"] == (4, 7)
    assert need["x"] == (7, 14)  # 4*2-1 = 7 .. 7*2-1+2 = 15, clamped to 14


def _branchy(op):
    h = 10
    layers = [Layer("x", "input", out_shape=(1, 2, h, h)),
              Layer("wide", "conv", out_shape=(1, 2, h, h), window=Window(5, 1, 2)),
              Layer("narrow", "conv", out_shape=(1, 2, h, h), window=Window(1, 1, 0)),
              Layer("pool", "pool", out_shape=(1, 2, h, h), window=Window(3, 1, 1)),
              Layer("join", op, out_shape=(1, 2 if op == "add" else 6, h, h))]
    edges = [("x", "wide"), ("x", "narrow"), ("x", "pool"), ("wide", "join"),
             ("narrow", "join"), ("pool", "join")]
    graph = LayerGraph(layers, edges)
    return graph, make_block(graph, ["wide", "narrow", "pool", "join"])


@pytest.mark.parametrize("op", ["add", "concat"])
def test_branches_joined_by_add_or_concat_take_the_hull(op):
    graph, block = _branchy(op)
    need = rows_needed(graph, block, (4, 6))
    assert need["wide"] == need["narrow"] == need["pool"] == (4, 6)
    assert need["x"] == (2, 8)  # the 5x5 branch dominates the 1x1 and 3x3 ones
    assert rows_needed(graph, block, (0, 1))["x"] == (0, 3)


def test_a_residual_add_needs_the_hull_of_the_skip_and_the_conv_path():
    w = Window(3, 1, 1)
    layers = [Layer("x", "input", out_shape=(1, 2, 12, 12)),
              Layer("a", "conv", out_shape=(1, 2, 12, 12), window=w),
              Layer("b", "conv", out_shape=(1, 2, 12, 12), window=w),
              Layer("sum", "add", out_shape=(1, 2, 12, 12))]
    graph = LayerGraph(layers, [("x", "a"), ("a", "b"), ("b", "sum"), ("x", "sum")])
    block = make_block(graph, ["a", "b", "sum"])
    assert rows_needed(graph, block, (5, 6))["x"] == (3, 8)


@given(height=st.integers(1, 300),
       weights=st.lists(st.floats(0.01, 100.0), min_size=1, max_size=8))
def test_split_rows_is_contiguous_covering_nonempty_and_proportional(height, weights):
    if height < len(weights):
        with pytest.raises(PlanError):
            split_rows(height, weights)
        return
    bands = split_rows(height, weights)
    assert len(bands) == len(weights)
    assert bands[0][0] == 0 and bands[-1][1] == height - 1
    for (_, end), (start, _) in zip(bands, bands[1:]):
        assert start == end + 1
    sizes = [b - a + 1 for a, b in bands]
    assert min(sizes) >= 1
    ideal = [height * w / sum(weights) for w in weights]
    if all(x >= 1 for x in ideal):  # no band was topped up to one row
        assert all(abs(s - x) < 1 for s, x in zip(sizes, ideal))


def test_split_rows_of_equal_weights_differ_by_at_most_one_row():
    sizes = [b - a + 1 for a, b in split_rows(10, [1, 1, 1])]
    assert sorted(sizes) == [3, 3, 4] and sizes[0] == 4  # ties go to the earlier band


def test_candidate_blocks_on_a_residual_graph_never_cut_inside_the_residual():
    w = Window(3, 1, 1)
    m = (1, 4, 8, 8)
    layers = [Layer("x", "input", out_shape=m), Layer("stem", "conv", out_shape=m, window=w),
              Layer("a", "conv", out_shape=m, window=w), Layer("b", "conv", out_shape=m, window=w),
              Layer("sum", "add", out_shape=m), Layer("act", "act", out_shape=m),
              Layer("gp", "global_pool", out_shape=(1, 4, 1, 1)),
              Layer("fc", "linear", out_bytes=40)]
    edges = [("x", "stem"), ("stem", "a"), ("a", "b"), ("b", "sum"), ("stem", "sum"),
             ("sum", "act"), ("act", "gp"), ("gp", "fc")]
    graph = LayerGraph(layers, edges)
    blocks = candidate_blocks(graph)
    spans = {b.layers for b in blocks}
    assert ("a", "b", "sum") in spans and ("stem", "a", "b", "sum", "act") in spans
    for block in blocks:
        assert make_block(graph, block.layers) == block
        assert not ({"a", "b"} & set(block.layers)) or "sum" in block.layers
        assert "gp" not in block.layers and "fc" not in block.layers
    assert all(b.entry in {"x", "stem", "sum", "act"} for b in blocks)
    assert len(candidate_blocks(graph, max_segments=1)) < len(blocks)


@given(heights=st.lists(st.integers(1, 60), min_size=1, max_size=6), k=st.integers(1, 6),
       data=st.data())
def test_band_sizes_cut_each_row_as_split_rows_does(heights, k, data):
    heights = [max(h, k) for h in heights]
    weights = np.array([data.draw(st.lists(st.floats(0.0, 50.0), min_size=k, max_size=k))
                        for _ in heights])
    sizes = band_sizes(np.array(heights), weights)
    for h, w, row in zip(heights, weights, sizes):
        assert [b - a + 1 for a, b in split_rows(h, w)] == row.tolist()
        assert row.sum() == h and row.min() >= 1


@settings(max_examples=60)
@given(instances(max_layers=9, max_edge=4))
def test_geometry_tables_agree_with_rows_needed_for_every_band(instance):
    graph = instance[0]
    blocks = candidate_blocks(graph)
    geo = tiling_geometry(graph, blocks)
    for b, block in enumerate(blocks):
        slots = [graph.order[i] for i in geo.slot_layer[geo.group[b]]]
        height = graph[block.exit].out_shape[2]
        for first in range(height):
            for last in range(first, height):
                need = rows_needed(graph, block, (first, last))
                assert need[block.entry] == (geo.entry_first[b, first], geo.entry_last[b, last])
                for slot, name in enumerate(slots):
                    if geo.inside[b, slot]:
                        assert need[name] == (geo.first[geo.group[b], first, slot],
                                              geo.last[geo.group[b], last, slot])
        assert {s for s, x in zip(slots, geo.inside[b]) if x} == set(block.layers)


@settings(max_examples=80)
@given(instances(max_layers=9, max_edge=4), st.sampled_from(["switched", "shared"]))
def test_vectorised_block_times_equal_block_cost(instance, lan):
    from dataclasses import replace

    graph, nodes, network = instance
    cost = CostModel(graph, nodes, replace(network, lan=lan))
    blocks = candidate_blocks(graph)
    geo = tiling_geometry(graph, blocks)
    times = block_times(cost, geo)
    for b, block in enumerate(blocks):
        untiled = sum(cost.time(name, Tier.EDGE) for name in block.layers)
        assert math.isclose(times.time[b, 0], untiled, rel_tol=1e-12, abs_tol=1e-18)
        for k in range(2, nodes.K + 1):
            if graph[block.exit].out_shape[2] < k:
                assert times.time[b, k - 1] == math.inf
                continue
            exact = block_cost(cost, block, k)
            assert math.isclose(times.time[b, k - 1], exact.time, rel_tol=1e-9, abs_tol=1e-15)
            names = tuple(nodes.edge[i].name for i in times.members[b, :k])
            assert names == exact.nodes
        fixed = block_times(cost, geo, [b], tiles=[nodes.K])
        assert np.array_equal(fixed.time[0, [0, nodes.K - 1]], times.time[b, [0, nodes.K - 1]])
        assert np.isinf(fixed.time[0, 1:nodes.K - 1]).all()
