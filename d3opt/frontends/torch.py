"""The torch frontend: a ``torch.nn.Module`` and an example input -> :class:`LayerGraph`.

The module is captured with :func:`torch.export.export` (see :func:`export_program`, the one
place d3opt exports a module) and the aten nodes of the exported graph are grouped into
layers at *leaf-module granularity*, using each node's ``nn_module_stack``:

- every call of a leaf module (a module without children: ``Conv2d``, ``BatchNorm2d``,
  ``ReLU``, ``MaxPool2d``, ``Linear``, ...) is one layer named after the module path
  (``"layer1.0.conv1"``; a second call of the same module gets ``"@1"`` appended);
- every aten node issued directly by a non-leaf module's ``forward`` (``add``, ``cat``,
  ``flatten``, ``mean``, ...) is its own layer, named ``"<module path>.<op>"`` (``"add"`` at
  the top level), made unique with ``_1``, ``_2``...;
- ``getitem`` nodes that unpack a multi-output op belong to the layer of that op;
- each model input becomes a layer of op ``"input"`` named after its placeholder;
- nodes that do not depend on any model input (constant computations) are folded into
  the weights: they are not layers and their FLOPs are not counted.

The op kind of a layer comes from its aten ops (see :data:`ATEN_KINDS`): conv, pool, bn,
act, add, mul, concat, identity, global_pool, flatten, reshape, linear, softmax, norm; an
adaptive average pool to 1x1 or a mean over H and W is ``"global_pool"``, dropout in eval
mode is ``"identity"``, a binary op with a constant or weight operand is an element-wise
``"act"``, and everything else (or a leaf module mixing several kinds) is ``"other"`` --
still costed, never tiled. Conv and pool layers carry their :class:`~d3opt.graph.Window`.

FLOPs come from torch's own :class:`torch.utils.flop_counter.FlopCounterMode`: each aten
node is replayed once on meta tensors of its recorded shapes, so the numbers are exactly
the ones ``FlopCounterMode`` reports for the whole model (2 FLOPs per multiply-accumulate of
convolutions and matrix products; element-wise ops count 0). ``param_bytes`` is the size of
the parameters, buffers and constants the layer's nodes read; ``out_shape`` and ``dtype``
come from the node metadata (``meta["val"]``). ``Layer.source`` lists the exported graph's
node names of the layer (the placeholder name for an input layer).

When ``torch.export`` fails, :func:`from_torch` falls back to
``torch.fx.symbolic_trace`` + ``ShapeProp`` (one real forward pass on a copy of the model);
then a layer is an fx node (a leaf-module call or a function/method call) and ``source``
holds fx node names.

The model is never modified (not even ``.eval()``): the graph reflects the model's current
mode. Models from :mod:`d3opt.zoo` come in eval mode.

Examples
--------
>>> from d3opt import zoo
>>> from d3opt.frontends.torch import from_torch
>>> g = from_torch(zoo.get("tinycnn"), zoo.example_input("tinycnn"))
>>> g.inputs, g.outputs, g["stem.conv"].op, g["stem.conv"].window.kernel
(('x',), ('fc',), 'conv', (3, 3))
>>> g.preds("add"), g["cat"].op
(('stem.act', 'conv2'), 'concat')
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Sequence
from types import MappingProxyType

import torch
import torch.fx
from torch.export.graph_signature import InputKind
from torch.fx.operator_schemas import normalize_function
from torch.fx.passes.shape_prop import ShapeProp
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.flop_counter import FlopCounterMode

from d3opt.errors import GraphError
from d3opt.graph import DTYPE_BYTES, Layer, LayerGraph, Window

__all__ = ["export_program", "from_torch", "ATEN_KINDS", "MODULE_KINDS"]

#: Layer op kind of each aten operator (by name, in-place ``_`` suffix removed).
ATEN_KINDS = MappingProxyType({
    **dict.fromkeys(("conv2d", "convolution", "_convolution"), "conv"),
    **dict.fromkeys(("max_pool2d", "max_pool2d_with_indices", "avg_pool2d"), "pool"),
    **dict.fromkeys(("batch_norm", "_native_batch_norm_legit_no_training",
                     "_native_batch_norm_legit", "native_batch_norm", "instance_norm"), "bn"),
    **dict.fromkeys(("layer_norm", "native_layer_norm", "group_norm", "native_group_norm",
                     "rms_norm"), "norm"),
    **dict.fromkeys(("relu", "relu6", "hardtanh", "sigmoid", "tanh", "gelu", "silu", "elu",
                     "hardswish", "hardsigmoid", "leaky_relu", "mish", "softplus", "clamp",
                     "clamp_min", "clamp_max", "neg", "exp", "sqrt", "rsqrt", "abs"), "act"),
    **dict.fromkeys(("add", "sub"), "add"),
    **dict.fromkeys(("mul", "div"), "mul"),
    "cat": "concat",
    **dict.fromkeys(("dropout", "feature_dropout", "alpha_dropout", "clone", "alias",
                     "contiguous", "detach", "lift_fresh_copy"), "identity"),
    **dict.fromkeys(("flatten",), "flatten"),
    **dict.fromkeys(("view", "reshape", "_unsafe_view", "permute", "transpose", "t",
                     "squeeze", "unsqueeze", "expand"), "reshape"),
    **dict.fromkeys(("linear", "addmm", "mm", "matmul", "bmm", "baddbmm"), "linear"),
    **dict.fromkeys(("softmax", "_softmax", "log_softmax", "_log_softmax"), "softmax"),
    **dict.fromkeys(("adaptive_avg_pool2d", "_adaptive_avg_pool2d", "mean"), "global_pool"),
})

#: Layer op kind of common leaf modules (used by the fx fallback, by class name).
MODULE_KINDS = MappingProxyType({
    "Conv2d": "conv", "MaxPool2d": "pool", "AvgPool2d": "pool", "BatchNorm2d": "bn",
    "ReLU": "act", "ReLU6": "act", "Sigmoid": "act", "Tanh": "act", "GELU": "act",
    "SiLU": "act", "Hardswish": "act", "Hardsigmoid": "act", "LeakyReLU": "act", "ELU": "act",
    "Hardtanh": "act", "Dropout": "identity", "Identity": "identity", "Flatten": "flatten",
    "Linear": "linear", "Softmax": "softmax", "LayerNorm": "norm", "GroupNorm": "norm",
    "AdaptiveAvgPool2d": "global_pool",
})

#: Kinds that may be fused into one conv layer when a leaf module issues several ops.
_FUSABLE = frozenset({"conv", "bn", "act", "identity"})


def _as_args(example_input) -> tuple:
    if isinstance(example_input, torch.Tensor):
        return (example_input,)
    if isinstance(example_input, (tuple, list)) and all(
            isinstance(t, torch.Tensor) for t in example_input):
        return tuple(example_input)
    raise GraphError(
        "example_input must be a tensor or a tuple of tensors, got "
        f"{type(example_input).__name__}"
    )


def export_program(model: torch.nn.Module, example_input) -> torch.export.ExportedProgram:
    """Export ``model`` called on ``example_input`` with :func:`torch.export.export`.

    This is the single place d3opt captures a module, so that the layer graph
    (:func:`from_torch`) and the executor see the same graph: the same model and input
    always give the same node names. The program is non-strict, static-shape and at the
    default (training-IR) aten level; it is not decomposed further. The model is not
    modified and keeps its mode (eval-mode batch-norm and dropout are captured as such).

    Parameters
    ----------
    model : the module to capture.
    example_input : a tensor, or a tuple of tensors passed as positional arguments.

    Returns
    -------
    torch.export.ExportedProgram

    Raises
    ------
    GraphError
        When ``torch.export`` cannot capture the module (the message says why).

    Examples
    --------
    >>> from d3opt import zoo
    >>> ep = export_program(zoo.get("tinycnn"), zoo.example_input("tinycnn"))
    >>> [n.name for n in ep.graph.nodes if n.op == "call_function"][:2]
    ['conv2d', 'batch_norm']
    """
    if not isinstance(model, torch.nn.Module):
        raise GraphError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    args = _as_args(example_input)
    try:
        return torch.export.export(model, args, strict=False)
    except Exception as err:  # torch raises many types; report them as one
        raise GraphError(
            f"torch.export could not capture {type(model).__name__}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from err


# -- helpers shared by both tracers -------------------------------------------------------
def _op_name(target) -> str:
    if isinstance(target, torch._ops.OpOverload):
        name = target._overloadpacket.__name__
    else:
        name = getattr(target, "__name__", str(target))
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def _tensors(value) -> list[torch.Tensor]:
    leaves, _ = tree_flatten(value)
    return [t for t in leaves if isinstance(t, torch.Tensor)]


def _dtype_name(tensor: torch.Tensor, layer: str) -> str:
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in DTYPE_BYTES:
        raise GraphError(f"layer {layer!r}: unsupported output dtype {dtype!r}")
    return dtype


def _to_meta(value):
    if isinstance(value, torch.fx.Node):
        value = value.meta.get("val")
    if isinstance(value, torch.Tensor):
        return torch.empty_strided(tuple(value.shape), tuple(value.stride()),
                                   dtype=value.dtype, device="meta")
    return value


def _node_flops(node: torch.fx.Node) -> float:
    """FLOPs of one exported aten node, counted by FlopCounterMode on meta tensors."""
    if not isinstance(node.target, torch._ops.OpOverload):
        return 0.0
    args, kwargs = tree_map(_to_meta, (node.args, node.kwargs))
    counter = FlopCounterMode(display=False)
    with counter:
        node.target(*args, **kwargs)
    return float(counter.get_total_flops())


def _arguments(node: torch.fx.Node) -> dict:
    """The node's arguments by schema name (defaults filled in where known)."""
    values = tree_map(lambda a: a.meta.get("val") if isinstance(a, torch.fx.Node) else a,
                      (node.args, node.kwargs))
    normalized = normalize_function(node.target, values[0], values[1],
                                    normalize_to_only_use_kwargs=True)
    return dict(normalized.kwargs) if normalized is not None else {}


def _pair(value, default) -> tuple[int, int]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        value = default
    if isinstance(value, int):
        return (value, value)
    value = [int(v) for v in value]
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _conv_window(args: dict) -> Window | None:
    weight, x = args.get("weight"), args.get("input")
    if weight is None or x is None or weight.dim() != 4 or args.get("transposed", False):
        return None
    kernel = tuple(int(k) for k in weight.shape[2:])
    dilation = _pair(args.get("dilation"), 1)
    padding = args.get("padding", 0)
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
    return Window(kernel=kernel, stride=_pair(args.get("stride"), 1),
                  padding=_pair(padding, 0), dilation=dilation,
                  groups=int(args.get("groups", 1)))


def _pool_window(name: str, args: dict) -> Window:
    kernel = _pair(args["kernel_size"], 1)
    return Window(kernel=kernel, stride=_pair(args.get("stride"), kernel),
                  padding=_pair(args.get("padding"), 0),
                  dilation=_pair(args.get("dilation") if "max" in name else 1, 1),
                  ceil_mode=bool(args.get("ceil_mode", False)))


def _adaptive(in_shape, out_shape) -> tuple[str, Window | None]:
    """An adaptive average pool: global, an ordinary pool, or neither."""
    h_in, w_in = in_shape[-2:]
    h_out, w_out = out_shape[-2:]
    if (h_out, w_out) == (1, 1):
        return "global_pool", None
    if h_out and w_out and h_in % h_out == 0 and w_in % w_out == 0:
        kernel = (h_in // h_out, w_in // w_out)
        return "pool", Window(kernel=kernel, stride=kernel)
    return "other", None


def _node_kind(node: torch.fx.Node, data_inputs: int) -> tuple[str, Window | None]:
    """Op kind and window of one aten node (the data-tensor inputs decide binary ops)."""
    name = _op_name(node.target)
    kind = ATEN_KINDS.get(name, "other")
    out = node.meta.get("val")
    if kind == "conv":
        window = _conv_window(_arguments(node))
        return ("conv", window) if window is not None else ("other", None)
    if kind == "pool":
        return "pool", _pool_window(name, _arguments(node))
    if kind == "global_pool":
        args = _arguments(node)
        x = args.get("input", args.get("self"))
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            return "other", None
        if name == "mean":
            dims = {d % 4 for d in (args.get("dim") or ())}
            return ("global_pool", None) if dims == {2, 3} else ("other", None)
        return _adaptive(x.shape, out.shape)
    if kind in ("add", "mul"):
        if data_inputs >= 2:
            shapes = {tuple(a.meta["val"].shape) for a in node.all_input_nodes
                      if isinstance(a.meta.get("val"), torch.Tensor)}
            return (kind, None) if len(shapes) == 1 else ("other", None)
        return "act", None
    if kind == "concat":
        args = _arguments(node)
        dim = int(args.get("dim", 0))
        ok = isinstance(out, torch.Tensor) and out.dim() == 4 and dim % 4 == 1
        return ("concat", None) if ok else ("other", None)
    if kind == "reshape" and isinstance(out, torch.Tensor) and out.dim() == 2:
        inputs = [a.meta.get("val") for a in node.all_input_nodes]
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() > 2:
            return "flatten", None
    if kind == "identity" and name in ("dropout", "feature_dropout", "alpha_dropout"):
        args = _arguments(node)
        if args.get("train", False):
            return "other", None
    return kind, None


def _combine(kinds: list[tuple[str, Window | None]]) -> tuple[str, Window | None]:
    """One layer kind for the ops of one leaf-module call."""
    main = [(k, w) for k, w in kinds if k != "identity"]
    if not main:
        return "identity", None
    distinct = {k for k, _ in main}
    if len(distinct) == 1 and (len(main) == 1 or main[0][0] not in ("conv", "pool")):
        return main[0]
    convs = [(k, w) for k, w in main if k == "conv"]
    if len(convs) == 1 and distinct <= _FUSABLE:
        return convs[0]
    if distinct == {"flatten", "reshape"} or distinct == {"reshape"}:
        return ("flatten" if "flatten" in distinct else "reshape"), None
    return "other", None


def _unique(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


class _Group:
    """The aten/fx nodes of one layer while the graph is being built."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[torch.fx.Node] = []
        self.kinds: list[tuple[str, Window | None]] = []
        self.flops = 0.0
        self.params: dict[str, int] = {}


def _layer_of(group: _Group, escaping: list[torch.fx.Node], *, kind=None) -> Layer:
    kind, window = kind if kind is not None else _combine(group.kinds)
    outs = [t for node in escaping for t in _tensors(node.meta.get("val"))]
    if not outs:
        raise GraphError(f"layer {group.name!r}: its output has no recorded tensor value")
    last = outs[-1]
    nbytes = sum(t.numel() * t.element_size() for t in outs)
    return Layer(group.name, kind, flops=group.flops, param_bytes=sum(group.params.values()),
                 out_shape=tuple(last.shape), dtype=_dtype_name(last, group.name),
                 out_bytes=nbytes, window=window,
                 source=tuple(node.name for node in group.nodes))


def _assemble(groups: dict[str, _Group], owner: dict[torch.fx.Node, str],
              order: Sequence[torch.fx.Node], inputs: list[Layer],
              prefix: str) -> LayerGraph:
    """Layers and data edges from grouped nodes; ``owner`` maps node -> group name."""
    edges: set[tuple[str, str]] = set()
    escaping: dict[str, list[torch.fx.Node]] = {name: [] for name in groups}
    for node in order:
        if node not in owner:
            continue
        here = owner[node]
        for user in node.users:
            there = owner.get(user)
            if there != here:
                if here in escaping and node not in escaping[here]:
                    escaping[here].append(node)
                if there is not None:
                    edges.add((here, there))
    layers = list(inputs)
    for name, group in groups.items():
        out = escaping[name] or group.nodes[-1:]
        layers.append(_layer_of(group, out))
    rename = (lambda n: f"{prefix}/{n}") if prefix else (lambda n: n)
    if prefix:
        layers = [Layer(rename(l.name), l.op, flops=l.flops, param_bytes=l.param_bytes,
                        out_shape=l.out_shape, dtype=l.dtype, out_bytes=l.out_bytes,
                        window=l.window, times=l.times, source=l.source) for l in layers]
    return LayerGraph(layers, sorted((rename(u), rename(v)) for u, v in edges))


def _input_layer(node: torch.fx.Node, value, name: str) -> Layer:
    if not isinstance(value, torch.Tensor):
        raise GraphError(f"model input {node.name!r} is not a tensor")
    return Layer(name, "input", out_shape=tuple(value.shape),
                 dtype=_dtype_name(value, name), source=(node.name,))


def _depends_on(graph: torch.fx.Graph, sources: set[torch.fx.Node]) -> set[torch.fx.Node]:
    live = set(sources)
    for node in graph.nodes:
        if node not in live and any(a in live for a in node.all_input_nodes):
            live.add(node)
    return live


# -- torch.export path ---------------------------------------------------------------------
def _from_export(model: torch.nn.Module, ep: torch.export.ExportedProgram,
                 prefix: str) -> LayerGraph:
    graph = ep.graph
    kinds = {spec.arg.name: spec.kind for spec in ep.graph_signature.input_specs}
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    user_inputs = [n for n in placeholders if kinds.get(n.name) == InputKind.USER_INPUT]
    weights = {n for n in placeholders if n not in user_inputs}
    live = _depends_on(graph, set(user_inputs))
    modules = dict(model.named_modules())
    taken: set[str] = set()
    inputs = [_input_layer(n, n.meta.get("val"), _unique(n.name, taken)) for n in user_inputs]
    owner: dict[torch.fx.Node, str] = {n: layer.name for n, layer in zip(user_inputs, inputs)}
    groups: dict[str, _Group] = {}
    by_call: dict[str, str] = {}
    for node in graph.nodes:
        if node.op != "call_function" or node not in live:
            continue
        if node.target is operator.getitem and node.args[0] in owner:
            group = groups[owner[node.args[0]]]
        else:
            stack = node.meta.get("nn_module_stack") or {}
            key, (path, _) = next(reversed(stack.items())) if stack else ("", ("", None))
            module = modules.get(path)
            leaf = module is not None and next(module.children(), None) is None
            if leaf and key in by_call:
                group = groups[by_call[key]]
            else:
                if leaf:
                    call = key.rpartition("@")[2] if "@" in key else ""
                    base = (path or type(model).__name__) + (f"@{call}" if call else "")
                else:
                    op = _op_name(node.target)
                    base = f"{path}.{op}" if path else op
                group = _Group(_unique(base, taken))
                groups[group.name] = group
                if leaf:
                    by_call[key] = group.name
        owner[node] = group.name
        group.nodes.append(node)
        data_inputs = sum(1 for a in node.all_input_nodes if a in live)
        group.kinds.append(_node_kind(node, data_inputs))
        group.flops += _node_flops(node)
        for arg in node.all_input_nodes:
            if arg in weights or (arg not in live and arg.op != "placeholder"):
                val = arg.meta.get("val")
                if isinstance(val, torch.Tensor):
                    group.params[arg.name] = val.numel() * val.element_size()
    return _assemble(groups, owner, list(graph.nodes), inputs, prefix)


# -- torch.fx fallback ---------------------------------------------------------------------
class _FlopShapeProp(ShapeProp):
    """ShapeProp that also records each node's FLOPs and output value."""

    def run_node(self, n):
        counter = FlopCounterMode(display=False)
        with counter:
            result = super().run_node(n)
        n.meta["d3opt_flops"] = float(counter.get_total_flops())
        n.meta["val"] = tree_map(
            lambda t: t.detach().to("meta") if isinstance(t, torch.Tensor) else t, result)
        return result


def _fx_kind(node: torch.fx.Node, module, data_inputs: int) -> tuple[str, Window | None]:
    if node.op == "call_module":
        kind = MODULE_KINDS.get(type(module).__name__, "other")
        if kind == "conv":
            return kind, Window(kernel=module.kernel_size, stride=module.stride,
                                padding=_pair(module.padding, 0)
                                if not isinstance(module.padding, str) else (0, 0),
                                dilation=module.dilation, groups=module.groups)
        if kind == "pool":
            dilation = getattr(module, "dilation", 1)
            return kind, Window(kernel=_pair(module.kernel_size, 1),
                                stride=_pair(module.stride, module.kernel_size),
                                padding=_pair(module.padding, 0),
                                dilation=_pair(dilation, 1), ceil_mode=module.ceil_mode)
        if kind == "global_pool":
            x = node.all_input_nodes[0].meta["val"]
            return _adaptive(x.shape, node.meta["val"].shape)
        return kind, None
    name = _op_name(node.target)
    kind = {"cat": "concat", "flatten": "flatten", "add": "add", "mul": "mul",
            "relu": "act", "sigmoid": "act", "view": "reshape", "reshape": "reshape",
            "mean": "global_pool"}.get(name, "other")
    if kind in ("add", "mul") and data_inputs < 2:
        return "act", None
    if kind == "global_pool":
        return "other", None
    return kind, None


def _from_fx(model: torch.nn.Module, args: tuple, prefix: str) -> LayerGraph:
    clone = copy.deepcopy(model)
    try:
        traced = torch.fx.symbolic_trace(clone)
    except Exception as err:
        raise GraphError(
            f"neither torch.export nor torch.fx could trace {type(model).__name__}: "
            f"{type(err).__name__}: {err}") from err
    with torch.no_grad():
        _FlopShapeProp(traced).propagate(*args)
    graph = traced.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    live = _depends_on(graph, set(placeholders))
    modules = dict(traced.named_modules())
    taken: set[str] = set()
    inputs = [_input_layer(n, n.meta.get("val"), _unique(n.name, taken)) for n in placeholders]
    owner = {n: layer.name for n, layer in zip(placeholders, inputs)}
    groups: dict[str, _Group] = {}
    for node in graph.nodes:
        if node.op not in ("call_module", "call_function", "call_method") or node not in live:
            continue
        module = modules.get(node.target) if node.op == "call_module" else None
        base = node.target if module is not None else node.name
        group = _Group(_unique(base, taken))
        groups[group.name] = group
        owner[node] = group.name
        group.nodes.append(node)
        group.kinds.append(_fx_kind(node, module, sum(a in live for a in node.all_input_nodes)))
        group.flops = node.meta.get("d3opt_flops", 0.0)
        tensors = list(module.parameters()) + list(module.buffers()) if module else []
        for arg in node.all_input_nodes:
            if arg not in live:
                tensors += _tensors(arg.meta.get("val"))
        group.params = {str(i): t.numel() * t.element_size() for i, t in enumerate(tensors)}
    return _assemble(groups, owner, list(graph.nodes), inputs, prefix)


# -- public entry point --------------------------------------------------------------------
def from_torch(model: torch.nn.Module, example_input, *, name: str | None = None,
               tracer: str = "auto") -> LayerGraph:
    """The layer graph of ``model`` called on ``example_input``.

    Parameters
    ----------
    model : the module; it is not modified, and its current mode (train/eval) is captured.
    example_input : a tensor, or a tuple of tensors passed as positional arguments.
    name : when given, every layer name is prefixed with ``name + "/"`` (to tell models
        apart when graphs are combined); ``source`` names are unchanged.
    tracer : ``"export"`` (torch.export only), ``"fx"`` (torch.fx.symbolic_trace +
        ShapeProp only) or ``"auto"`` (export, falling back to fx when export fails).

    Returns
    -------
    LayerGraph
        One layer per leaf-module call or functional op (see the module docstring).

    Raises
    ------
    GraphError
        When the model cannot be captured, an output has an unsupported dtype, or the
        extracted graph is malformed.

    Examples
    --------
    >>> from d3opt import zoo
    >>> g = from_torch(zoo.get("tinycnn"), zoo.example_input("tinycnn"), name="tiny")
    >>> g.order[:3]
    ('tiny/x', 'tiny/stem.conv', 'tiny/stem.bn')
    >>> g["tiny/stem.conv"].source
    ('conv2d',)
    """
    if tracer not in ("auto", "export", "fx"):
        raise GraphError(f"tracer must be 'auto', 'export' or 'fx', got {tracer!r}")
    args = _as_args(example_input)
    prefix = name or ""
    if tracer == "fx":
        return _from_fx(model, args, prefix)
    try:
        ep = export_program(model, args)
    except GraphError:
        if tracer == "export":
            raise
        return _from_fx(model, args, prefix)
    return _from_export(model, ep, prefix)
