"""The ONNX frontend: an ONNX model -> :class:`LayerGraph`, via ONNX shape inference.

Mapping
-------
- one layer per ONNX node, named after the node (``"<op_type>_<i>"`` when unnamed; made
  unique with ``_1``, ``_2``...), ``source = (node name,)``;
- each graph input that is not an initializer becomes an ``"input"`` layer;
- ``Constant`` nodes, ``Shape``/``Size`` nodes and every node computed only from constants
  are folded into the weights (they are not layers); ``Identity`` nodes are folded away
  (their consumers read the identity's input);
- op kinds: Conv -> conv, MaxPool/AveragePool -> pool, GlobalAveragePool/GlobalMaxPool and
  ReduceMean over H,W -> global_pool, BatchNormalization/InstanceNormalization -> bn,
  LayerNormalization/GroupNormalization -> norm, Relu/Clip/Sigmoid/... -> act, Add/Sub and
  Mul/Div of two same-shaped data tensors -> add/mul (with a constant operand: act),
  Concat along channels -> concat, Dropout -> identity, Flatten -> flatten, Reshape ->
  flatten (to 2-D) or reshape, Gemm/MatMul -> linear, Softmax/LogSoftmax -> softmax;
  anything else -> other (still costed, never tiled);
- Conv and pool attributes (``kernel_shape``, ``strides``, ``pads`` (top, left),
  ``dilations``, ``group``, ``ceil_mode``, ``auto_pad``) give the layer's
  :class:`~d3opt.graph.Window`;
- FLOPs follow ``torch.utils.flop_counter``'s conventions: 2 per multiply-accumulate for
  Conv, ConvTranspose, Gemm and MatMul (bias and element-wise ops count 0), so totals agree
  with :func:`d3opt.from_torch` on the same model;
- ``param_bytes`` is the size of the initializers and constants a node reads; output
  shapes and dtypes come from ``onnx.shape_inference.infer_shapes``.

A file is read without its external weight data (only shapes are needed), so large models
load quickly. ``torch.onnx.export`` (which needs ``onnxscript``) writes external data and
folds batch-norm into the preceding convolution, so an exported graph has fewer layers than
:func:`d3opt.from_torch` finds, with the same FLOPs.

Examples
--------
>>> import onnx
>>> from onnx import helper, TensorProto
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
>>> w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.0] * 108)
>>> conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1])
>>> relu = helper.make_node("Relu", ["c"], ["y"], name="relu")
>>> model = helper.make_model(helper.make_graph([conv, relu], "g", [x], [y], [w]))
>>> g = from_onnx(model)
>>> g.order, g["conv"].flops, g["conv"].out_shape, g["conv"].window.padding
(('x', 'conv', 'relu'), 13824.0, (1, 4, 8, 8), (1, 1))
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import onnx
from onnx import helper, numpy_helper

from d3opt.errors import GraphError
from d3opt.graph import DTYPE_BYTES, Layer, LayerGraph, Window

__all__ = ["from_onnx", "ONNX_KINDS"]

#: Layer op kind of each ONNX operator type (before the shape-dependent refinements).
ONNX_KINDS = MappingProxyType({
    "Conv": "conv",
    "MaxPool": "pool", "AveragePool": "pool",
    "GlobalAveragePool": "global_pool", "GlobalMaxPool": "global_pool",
    "ReduceMean": "global_pool",
    "BatchNormalization": "bn", "InstanceNormalization": "bn",
    "LayerNormalization": "norm", "GroupNormalization": "norm",
    **dict.fromkeys(("Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid",
                     "HardSwish", "Gelu", "Elu", "Selu", "Softplus", "Mish", "Exp", "Sqrt",
                     "Neg", "Abs", "Erf", "PRelu"), "act"),
    "Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul",
    "Concat": "concat",
    "Dropout": "identity",
    "Flatten": "flatten",
    **dict.fromkeys(("Reshape", "Squeeze", "Unsqueeze", "Transpose", "Expand"), "reshape"),
    "Gemm": "linear", "MatMul": "linear",
    "Softmax": "softmax", "LogSoftmax": "softmax",
})

#: Nodes whose outputs depend only on static shapes or constants: folded into weights.
_CONSTANT_OPS = frozenset({"Constant", "ConstantOfShape", "Shape", "Size"})

#: Nodes whose second input only lends its element type (not its data).
_TYPE_ONLY_SECOND = frozenset({"CastLike"})


def _load(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise GraphError(f"from_onnx needs a path or an onnx.ModelProto, got {type(model).__name__}")
    path = Path(model)
    if not path.is_file():
        raise GraphError(f"ONNX file {str(path)!r} does not exist")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError and others
        raise GraphError(f"{path.name!r} is not a readable ONNX model: {err}") from err


def _dtype(elem_type: int, where: str) -> str:
    try:
        name = helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, TypeError, ValueError):
        name = str(elem_type)
    if name not in DTYPE_BYTES:
        raise GraphError(f"{where}: unsupported element type {name!r}")
    return name


def _value_shapes(graph: onnx.GraphProto) -> dict[str, tuple[tuple[int, ...] | None, int]]:
    """Name -> (static shape or None when unknown, element type) for every typed value."""
    shapes = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if not info.type.HasField("tensor_type") or not tensor.HasField("shape"):
            shapes.setdefault(info.name, (None, tensor.elem_type))
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        shapes[info.name] = (None if any(d < 0 for d in dims) else dims, tensor.elem_type)
    return shapes


def _const_bytes(tensor: onnx.TensorProto) -> int:
    return math.prod(tensor.dims) * DTYPE_BYTES.get(_dtype_or_none(tensor.data_type), 4)


def _dtype_or_none(elem_type: int) -> str | None:
    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, TypeError, ValueError):
        return None


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _window(node: onnx.NodeProto, attrs: Mapping, in_shape, kernel) -> Window | None:
    """Conv/pool geometry; None when the node is not 2-D."""
    if in_shape is None or len(in_shape) != 4 or kernel is None or len(kernel) != 2:
        return None
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        padding = []
        for size, k, s, d in zip(in_shape[2:], kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            padding.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    elif auto_pad == "VALID":
        padding = [0, 0]
    else:
        padding = list(attrs.get("pads", (0, 0, 0, 0)))[:2]
    return Window(kernel=tuple(kernel), stride=strides, padding=tuple(padding),
                  dilation=dilations, ceil_mode=bool(attrs.get("ceil_mode", 0)),
                  groups=int(attrs.get("group", 1)))


class _Converter:
    """State of one conversion: shapes, constants, aliases, layers and edges."""

    def __init__(self, model: onnx.ModelProto):
        graph = model.graph
        self.graph = graph
        self.shapes = _value_shapes(graph)
        self.consts: dict[str, onnx.TensorProto | None] = {t.name: t for t in graph.initializer}
        for t in graph.initializer:
            self.shapes.setdefault(t.name, (tuple(t.dims), t.data_type))
        self.alias: dict[str, str] = {}
        self.producer: dict[str, str] = {}
        self.layers: list[Layer] = []
        self.edges: set[tuple[str, str]] = set()
        self.taken: set[str] = set()
        consumed = {name for node in graph.node for name in node.input if name}
        self.consumed = consumed | {o.name for o in graph.output}

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def shape(self, name: str):
        return self.shapes.get(self.resolve(name), (None, 0))[0]

    def const_value(self, name: str):
        tensor = self.consts.get(self.resolve(name))
        if tensor is None or tensor.data_location == onnx.TensorProto.EXTERNAL:
            return None
        return numpy_helper.to_array(tensor)

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name

    # -- stages -------------------------------------------------------------------------
    def inputs(self) -> None:
        for info in self.graph.input:
            if info.name in self.consts:
                continue
            shape, elem = self.shapes.get(info.name, (None, 0))
            name = self.unique(info.name)
            if shape is None:
                raise GraphError(f"model input {info.name!r} has no static shape")
            self.layers.append(Layer(name, "input", out_shape=shape,
                                     dtype=_dtype(elem, f"model input {info.name!r}"),
                                     source=(info.name,)))
            self.producer[info.name] = name

    def node(self, index: int, node: onnx.NodeProto) -> None:
        reads = node.input[:1] if node.op_type in _TYPE_ONLY_SECOND else node.input
        data = [self.resolve(i) for i in reads if i and self.resolve(i) in self.producer]
        if node.op_type in _CONSTANT_OPS or not data:
            for out in node.output:
                self.consts[out] = self._constant_attr(node)
            return
        if node.op_type == "Identity":
            self.alias[node.output[0]] = self.resolve(node.input[0])
            return
        name = self.unique(node.name or f"{node.op_type}_{index}")
        where = f"ONNX node {name!r} ({node.op_type})"
        outs = [o for o in node.output if o]
        shape, elem = self.shapes.get(outs[0], (None, 0)) if outs else (None, 0)
        if shape is None:
            raise GraphError(f"{where}: the shape of its output {outs[:1]} cannot be inferred")
        kind, window = self._kind(node, data, shape)
        out_bytes = 0
        for out in outs:
            if out == outs[0] or out in self.consumed:
                out_shape, out_elem = self.shapes.get(out, (None, 0))
                if out_shape is None:
                    raise GraphError(f"{where}: the shape of its output {out!r} cannot be inferred")
                out_bytes += math.prod(out_shape) * DTYPE_BYTES[_dtype(out_elem, where)]
        params = {self.resolve(i) for i in node.input
                  if i and self.resolve(i) not in self.producer}
        param_bytes = sum(_const_bytes(self.consts[p]) for p in params
                          if self.consts.get(p) is not None)
        self.layers.append(Layer(name, kind, flops=self._flops(node, shape), window=window,
                                 param_bytes=param_bytes, out_shape=shape,
                                 dtype=_dtype(elem, where), out_bytes=out_bytes,
                                 source=(node.name or name,)))
        for producer in dict.fromkeys(self.producer[d] for d in data):
            self.edges.add((producer, name))
        for out in outs:
            self.producer[out] = name

    def _constant_attr(self, node: onnx.NodeProto) -> onnx.TensorProto | None:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return attr.t
        return None

    def _kind(self, node: onnx.NodeProto, data: list[str], shape) -> tuple[str, Window | None]:
        op = node.op_type
        kind = ONNX_KINDS.get(op, "other")
        attrs = _attrs(node)
        in_shape = self.shape(node.input[0])
        if kind == "conv":
            w_shape = self.shape(node.input[1])
            kernel = attrs.get("kernel_shape", w_shape[2:] if w_shape else None)
            window = _window(node, attrs, in_shape, kernel)
            return ("conv", window) if window is not None else ("other", None)
        if kind == "pool":
            window = _window(node, attrs, in_shape, attrs.get("kernel_shape"))
            return ("pool", window) if window is not None else ("other", None)
        if op == "ReduceMean":
            axes = attrs.get("axes")
            if axes is None and len(node.input) > 1:
                value = self.const_value(node.input[1])
                axes = None if value is None else value.reshape(-1).tolist()
            ok = in_shape is not None and len(in_shape) == 4 and axes is not None and \
                {int(a) % 4 for a in axes} == {2, 3}
            return ("global_pool", None) if ok else ("other", None)
        if kind in ("add", "mul"):
            if len(data) < 2:
                return "act", None
            same = len({self.shape(d) for d in data}) == 1
            return (kind, None) if same else ("other", None)
        if kind == "concat":
            axis = int(attrs.get("axis", 0))
            return ("concat", None) if len(shape) == 4 and axis % 4 == 1 else ("other", None)
        if kind == "reshape" and len(shape) == 2 and in_shape is not None and len(in_shape) > 2:
            return "flatten", None
        return kind, None

    def _flops(self, node: onnx.NodeProto, out_shape) -> float:
        op = node.op_type
        if op in ("Conv", "ConvTranspose"):
            x, w = self.shape(node.input[0]), self.shape(node.input[1])
            if x is None or w is None:
                return 0.0
            spatial = x[2:] if op == "ConvTranspose" else out_shape[2:]
            return 2.0 * x[0] * math.prod(w) * math.prod(spatial)
        if op == "Gemm":
            a = self.shape(node.input[0])
            if a is None:
                return 0.0
            k = a[0] if _attrs(node).get("transA", 0) else a[1]
            return 2.0 * math.prod(out_shape) * k
        if op == "MatMul":
            a = self.shape(node.input[0])
            return 0.0 if a is None else 2.0 * math.prod(out_shape) * a[-1]
        return 0.0


def from_onnx(model, *, name: str | None = None) -> LayerGraph:
    """The layer graph of an ONNX model.

    Parameters
    ----------
    model : path of an ``.onnx`` file (its external weight data is not read) or an
        ``onnx.ModelProto`` (not modified).
    name : when given, every layer name is prefixed with ``name + "/"``.

    Returns
    -------
    LayerGraph
        One layer per ONNX node (see the module docstring for the mapping).

    Raises
    ------
    GraphError
        When the file is missing or unreadable, shape inference fails, a node's output
        shape cannot be inferred (the message names the node), or the graph is malformed.

    Examples
    --------
    >>> from onnx import helper, TensorProto
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])
    >>> w = helper.make_tensor("w", TensorProto.FLOAT, [16, 4], [0.0] * 64)
    >>> mm = helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    >>> g = from_onnx(helper.make_model(helper.make_graph([mm], "g", [x], [y], [w])), name="m")
    >>> g.order, g["m/fc"].flops, g["m/fc"].param_bytes
    (('m/x', 'm/fc'), 256.0, 256)
    """
    proto = _load(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    except Exception as err:  # onnx raises InferenceError and others
        raise GraphError(f"ONNX shape inference failed: {err}") from err
    converter = _Converter(inferred)
    converter.inputs()
    if not converter.layers:
        raise GraphError("the ONNX model has no (non-initializer) inputs")
    later = {out: node for node in inferred.graph.node for out in node.output if out}
    for index, node in enumerate(inferred.graph.node):
        for name_in in node.input:
            if name_in in later and name_in not in converter.producer \
                    and name_in not in converter.consts and name_in not in converter.alias:
                raise GraphError(
                    f"ONNX node {node.name or node.op_type!r} reads {name_in!r} before it is "
                    "produced (the graph is not topologically sorted or has a cycle)")
        converter.node(index, node)
    layers, edges = converter.layers, sorted(converter.edges)
    if name:
        layers = [Layer(f"{name}/{l.name}", l.op, flops=l.flops, param_bytes=l.param_bytes,
                        out_shape=l.out_shape, dtype=l.dtype, out_bytes=l.out_bytes,
                        window=l.window, source=l.source) for l in layers]
        edges = [(f"{name}/{u}", f"{name}/{v}") for u, v in edges]
    return LayerGraph(layers, edges)
