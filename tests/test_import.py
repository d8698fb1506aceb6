"""`import d3opt` stays light: a profile-only workflow must not pay for torch or onnx."""

import subprocess
import sys


def test_import_does_not_load_torch_or_onnx():
    code = "import sys, d3opt; print('torch' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unknown_method_lists_the_known_ones():
    import pytest

    import d3opt
    g = d3opt.LayerGraph([d3opt.Layer("x", "input", out_bytes=1)], [])
    nodes = d3opt.Nodes(d3opt.Node("d", flops=1), [d3opt.Node("e", flops=1)],
                        d3opt.Node("c", flops=1))
    net = d3opt.Network(d3opt.Link(1), d3opt.Link(1), d3opt.Link(1))
    with pytest.raises(ValueError, match="known methods"):
        d3opt.solve(g, nodes, net, method="magic")
