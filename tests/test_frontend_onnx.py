"""The ONNX frontend: hand-built graphs, and a torch.onnx roundtrip of every zoo model."""

import math
import warnings

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from d3opt import GraphError, zoo
from d3opt.frontends.onnx import from_onnx

F = TensorProto.FLOAT


def _weight(name, dims):
    return helper.make_tensor(name, F, dims, [0.0] * math.prod(dims))


def _model(nodes, inputs, inits=(), output="y"):
    out = helper.make_tensor_value_info(output, F, None)
    return helper.make_model(helper.make_graph(nodes, "g", inputs, [out], list(inits)))


X = helper.make_tensor_value_info("x", F, [1, 3, 9, 9])


def test_small_dag_mapping():
    nodes = [
        helper.make_node("Constant", [], ["k"], value=_weight("kv", [1, 3, 1, 1])),
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", auto_pad="SAME_UPPER",
                         strides=[2, 2]),
        helper.make_node("Identity", ["c"], ["c2"], name="ident"),
        helper.make_node("MaxPool", ["c2"], ["p"], name="pool", kernel_shape=[3, 3],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("Add", ["x", "k"], ["xk"], name="bias"),
        helper.make_node("MaxPool", ["xk"], ["q"], name="pool2", kernel_shape=[2, 2],
                         strides=[4, 4]),
        helper.make_node("Concat", ["p", "q"], ["cat"], name="cat", axis=1),
        helper.make_node("Mul", ["cat", "cat"], ["sq"], name="square"),
        helper.make_node("Sin", ["sq"], ["s"], name="sine"),
        helper.make_node("GlobalAveragePool", ["s"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = [_weight("w", [4, 3, 3, 3]), _weight("fw", [10, 7]), _weight("fb", [10])]
    g = from_onnx(_model(nodes, [X], inits), name="m")
    names = [n.removeprefix("m/") for n in g.order]
    assert names == ["x", "conv", "pool", "bias", "pool2", "cat", "square", "sine", "gap",
                     "flat", "fc"]
    assert g.preds("m/pool") == ("m/conv",)  # the Identity is folded away
    assert g["m/conv"].out_shape == (1, 4, 5, 5)
    # SAME_UPPER: 9 -> 5 with stride 2 and kernel 3 needs 2 rows of padding, 1 on top
    w = g["m/conv"].window
    assert (w.kernel, w.stride, w.padding) == ((3, 3), (2, 2), (1, 1))
    assert g["m/conv"].flops == 2 * 4 * 3 * 9 * 5 * 5
    assert g["m/conv"].param_bytes == 4 * 3 * 3 * 3 * 4
    assert g["m/pool"].window.ceil_mode and g["m/pool"].out_shape == (1, 4, 2, 2)
    assert g["m/bias"].op == "act" and g["m/bias"].param_bytes == 12
    ops = {n.removeprefix("m/"): g[n].op for n in g}
    assert ops == {"x": "input", "conv": "conv", "pool": "pool", "bias": "act",
                   "pool2": "pool", "cat": "concat", "square": "mul", "sine": "other",
                   "gap": "global_pool", "flat": "flatten", "fc": "linear"}
    assert g["m/fc"].flops == 2 * 10 * 7 and g["m/fc"].out_bytes == 40
    assert set(g.preds("m/cat")) == {"m/pool", "m/pool2"}


def test_uninferable_shape_names_the_node():
    node = helper.make_node("Mystery", ["x"], ["y"], name="magic", domain="custom.ops")
    model = _model([node], [X])
    model.opset_import.append(helper.make_opsetid("custom.ops", 1))
    with pytest.raises(GraphError, match="'magic'.*cannot be inferred"):
        from_onnx(model)


def test_unsorted_graph_is_rejected():
    nodes = [helper.make_node("Relu", ["b"], ["y"], name="first"),
             helper.make_node("Relu", ["x"], ["b"], name="second")]
    with pytest.raises(GraphError, match="'first'.*topologically"):
        from_onnx(_model(nodes, [X]))


def test_bad_files(tmp_path):
    with pytest.raises(GraphError, match="does not exist"):
        from_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a protobuf at all\x12")
    with pytest.raises(GraphError, match="junk.onnx"):
        from_onnx(junk)
    with pytest.raises(GraphError, match="path or an onnx.ModelProto"):
        from_onnx(123)


@pytest.fixture(scope="module", params=zoo.names(include_demo=True))
def exported(request, tmp_path_factory):
    """A zoo model exported once with torch.onnx.export, plus its reference numbers."""
    name = request.param
    model, x = zoo.get(name), zoo.example_input(name)
    path = tmp_path_factory.mktemp(name) / f"{name}.onnx"
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        result = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
    return model, path, counter.get_total_flops(), tuple(result.shape)


def test_onnx_roundtrip(exported):
    model, path, flops, out_shape = exported
    g = from_onnx(path)
    assert g.total_flops == pytest.approx(flops, rel=0.01)
    assert len(g.outputs) == 1 and g[g.outputs[0]].out_shape == out_shape
    assert g.inputs == ("x",)
    # batch-norm is folded into the convolutions, but every convolution stays
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert sorted(g[n].window.kernel for n in g if g[n].op == "conv") == sorted(
        m.kernel_size for m in convs)
    # same graph when given as a loaded ModelProto (weights not loaded)
    proto = onnx.load(str(path), load_external_data=False)
    assert from_onnx(proto).order == g.order
