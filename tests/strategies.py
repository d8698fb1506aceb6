"""Hypothesis strategies for random problem instances shared by the solver tests.

``instances()`` draws ``(graph, nodes, network)``: a random DAG fed by one input layer, with
random FLOPs and tensor sizes; with ``tileable=True`` most layers are conv/pool/act/add/concat
on 4-D maps with consistent geometry, so candidate tiled blocks exist.
"""

from __future__ import annotations

import hypothesis.strategies as st

from d3opt.graph import Layer, LayerGraph, Window
from d3opt.system import Link, Network, Node, Nodes


def _conv_height(h: int, w: Window) -> int:
    return (h + 2 * w.padding[0] - w.dilation[0] * (w.kernel[0] - 1) - 1) // w.stride[0] + 1


@st.composite
def graphs(draw, *, min_layers: int = 2, max_layers: int = 9, tileable: bool = True,
           max_branching: int = 2) -> LayerGraph:
    """A random LayerGraph with ``min_layers..max_layers`` layers (the input included)."""
    n = draw(st.integers(min_layers, max_layers))
    height = draw(st.integers(4, 12))
    channels = draw(st.integers(1, 16))
    layers = [Layer("in", "input", out_shape=(1, channels, height, height))]
    edges = []
    for i in range(1, n):
        name = f"l{i}"
        # The previous layer always feeds this one (one sink, a backbone with skips).
        preds = [layers[-1].name]
        skips = [layer.name for layer in layers[-3:-1]]
        if skips and max_branching > 1 and draw(st.integers(0, 3)) == 0:
            preds.insert(0, draw(st.sampled_from(skips)))
        shapes = [next(layer for layer in layers if layer.name == p).out_shape for p in preds]
        flops = draw(st.floats(0.0, 4e9, allow_nan=False, allow_subnormal=False))
        params = draw(st.integers(0, 4_000_000))
        maps = all(s is not None and len(s) == 4 for s in shapes)
        make_map = tileable and maps and draw(st.integers(0, 9)) > 0
        if make_map and len(preds) == 1:
            c, h = shapes[0][1], shapes[0][2]
            kind = draw(st.sampled_from(["conv", "conv", "pool", "act"]))
            if kind == "act":
                layer = Layer(name, "act", flops=flops, out_shape=shapes[0])
            else:
                window = Window(kernel=draw(st.sampled_from([1, 3])),
                                stride=draw(st.sampled_from([1, 1, 2])),
                                padding=draw(st.sampled_from([0, 1])))
                out_h = _conv_height(h, window)
                if out_h < 1 or window.padding[0] * 2 > window.kernel[0]:
                    window = Window(kernel=1)
                    out_h = h
                out_c = draw(st.integers(1, 16)) if kind == "conv" else c
                layer = Layer(name, kind, flops=flops, param_bytes=params if kind == "conv" else 0,
                              out_shape=(1, out_c, out_h, out_h), window=window)
        elif make_map:
            heights = {s[2] for s in shapes}
            if len(heights) == 1:
                op = draw(st.sampled_from(["add", "concat"]))
                c = sum(s[1] for s in shapes) if op == "concat" else shapes[0][1]
                layer = Layer(name, op, flops=flops, out_shape=(1, c, shapes[0][2], shapes[0][3]))
            else:
                layer = Layer(name, "other", flops=flops, out_bytes=draw(st.integers(1, 200_000)))
        else:
            layer = Layer(name, draw(st.sampled_from(["linear", "other"])), flops=flops,
                          param_bytes=params, out_bytes=draw(st.integers(1, 200_000)))
        layers.append(layer)
        edges.extend((p, name) for p in preds)
    return LayerGraph(layers, edges)


@st.composite
def systems(draw, *, max_edge: int = 3, min_edge: int = 1) -> tuple[Nodes, Network]:
    """Random nodes (1 device, ``min_edge..max_edge`` edge nodes, 1 cloud) and network."""
    speed = lambda lo, hi: draw(st.floats(lo, hi, allow_nan=False))  # noqa: E731
    k = draw(st.integers(min_edge, max_edge))
    device = Node("dev", flops=speed(1e9, 2e10), overhead=speed(0, 1e-3))
    edge = [Node(f"e{i}", flops=speed(1e10, 2e11), overhead=speed(0, 1e-3)) for i in range(k)]
    cloud = Node("cloud", flops=speed(5e9, 1e13), overhead=speed(0, 1e-3))

    def link(lo: float, hi: float) -> Link:
        return Link(bandwidth=speed(lo, hi), latency=speed(0.0, 0.05))

    direct = draw(st.booleans())
    # Half the instances have a far cloud, so that edge plans (and tiles) are often optimal.
    far_cloud = draw(st.booleans())
    backbone = Link(bandwidth=speed(1e3, 1e5), latency=speed(0.05, 0.3)) if far_cloud else None
    network = Network(
        device_edge=link(1e4, 5e7), edge_edge=link(1e7, 1e10), edge_cloud=backbone or link(1e4, 5e7),
        device_cloud=(backbone or link(1e5, 1e7)) if direct else None,
        lan=draw(st.sampled_from(["switched", "shared"])),
    )
    return Nodes(device, edge, cloud), network


@st.composite
def instances(draw, *, min_layers: int = 2, max_layers: int = 9, max_edge: int = 3,
              tileable: bool = True, min_edge: int = 1):
    """``(graph, nodes, network)`` for solver property tests."""
    graph = draw(graphs(min_layers=min_layers, max_layers=max_layers, tileable=tileable))
    nodes, network = draw(systems(max_edge=max_edge, min_edge=min_edge))
    return graph, nodes, network
