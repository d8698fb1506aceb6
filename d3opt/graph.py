"""The layer graph: a validated DAG of typed layer records.

A vertex is a layer (a module call or an operator, possibly a fused conv+bn+relu); an edge
``u -> v`` says that ``v`` reads the tensor that ``u`` produces. Each tensor is produced once
and may have many consumers. Model inputs are layers of op ``"input"``; the outputs of the
sinks (layers with no consumer) are the model's results.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> g = LayerGraph(
...     [Layer("x", "input", out_bytes=12), Layer("fc", "linear", flops=100.0, out_bytes=8)],
...     [("x", "fc")],
... )
>>> g.order, g.total_flops, g.outputs
(('x', 'fc'), 100.0, ('fc',))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import networkx as nx
import numpy as np

from d3opt.errors import GraphError

#: Operator kinds a layer may have. Frontends map their operators onto these.
OPS = frozenset(
    {
        "input",  # a model input, produced on the device
        "conv",  # convolution (possibly fused with batch-norm and activation)
        "pool",  # max/avg pooling over a spatial window
        "bn",  # batch/instance normalisation applied per channel
        "act",  # element-wise unary function (relu, sigmoid, ...)
        "add",  # element-wise sum of same-shaped inputs
        "mul",  # element-wise product of same-shaped inputs
        "concat",  # channel concatenation
        "identity",  # no-op (dropout at inference, ...)
        "global_pool",  # pooling over the whole spatial map
        "flatten",
        "reshape",
        "linear",  # fully connected / matrix multiplication
        "softmax",
        "norm",  # layer normalisation and other non-spatial normalisation
        "other",  # any other operator: costed, never tiled
    }
)

#: Ops that may sit inside a spatially tiled block (DESIGN section 1, vertical separation).
SPATIAL_OPS = frozenset({"conv", "pool", "bn", "act", "add", "mul", "concat", "identity"})

#: Ops whose geometry (kernel, stride, padding, dilation) changes the receptive field.
WINDOW_OPS = frozenset({"conv", "pool"})

DTYPE_BYTES = MappingProxyType(
    {
        "float64": 8,
        "float32": 4,
        "float16": 2,
        "bfloat16": 2,
        "int64": 8,
        "int32": 4,
        "int16": 2,
        "int8": 1,
        "uint8": 1,
        "bool": 1,
    }
)


def _pair(value, what: str, layer: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise GraphError(f"layer {layer!r}: {what} must be an int or a pair, got {value!r}")
    return pair


@dataclass(frozen=True)
class Window:
    """Sliding-window geometry of a conv or pooling layer (height, width order).

    ``padding`` is the zero padding added before the first row/column (top, left); the
    receptive field of output rows ``[a, b]`` is input rows
    ``[a*stride - pad, b*stride - pad + dilation*(kernel-1)]``, clamped to the map.

    >>> Window(kernel=3, stride=2, padding=1).kernel
    (3, 3)
    """

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    groups: int = 1

    def __post_init__(self):
        for name in ("kernel", "stride", "padding", "dilation"):
            object.__setattr__(self, name, _pair(getattr(self, name), name, "?"))
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise GraphError(f"window kernel, stride and dilation must be >= 1, got {self}")
        if min(self.padding) < 0 or self.groups < 1:
            raise GraphError(f"window padding must be >= 0 and groups >= 1, got {self}")


@dataclass(frozen=True)
class Layer:
    """One vertex of a :class:`LayerGraph`.

    Parameters
    ----------
    name : unique layer name.
    op : one of :data:`OPS`.
    flops : floating-point operations of one inference of this layer.
    param_bytes : bytes of weights the node running the layer must hold.
    out_shape : shape of the produced tensor, batch first (``(N, C, H, W)`` for maps).
    dtype : element type of the produced tensor.
    out_bytes : bytes of the produced tensor; derived from shape and dtype when omitted.
    window : conv/pool geometry, needed to tile the layer.
    times : measured seconds of this layer per node name (override the analytic model).
    source : frontend-specific identifiers of what the layer runs (e.g. fx node names).

    >>> Layer("c", "conv", out_shape=(1, 8, 4, 4)).out_bytes
    512
    """

    name: str
    op: str
    flops: float = 0.0
    param_bytes: int = 0
    out_shape: tuple[int, ...] | None = None
    dtype: str = "float32"
    out_bytes: int | None = None
    window: Window | None = None
    times: Mapping[str, float] = field(default_factory=dict)
    source: tuple[str, ...] = ()

    def __post_init__(self):
        where = f"layer {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise GraphError(f"layer names must be non-empty strings, got {self.name!r}")
        if self.op not in OPS:
            raise GraphError(f"{where}: unknown op {self.op!r}; known ops: {sorted(OPS)}")
        if self.dtype not in DTYPE_BYTES:
            raise GraphError(f"{where}: unknown dtype {self.dtype!r}")
        if self.out_shape is not None:
            shape = tuple(int(d) for d in self.out_shape)
            if any(d < 0 for d in shape):
                raise GraphError(f"{where}: negative dimension in out_shape {shape}")
            object.__setattr__(self, "out_shape", shape)
        if self.out_bytes is None:
            if self.out_shape is None:
                raise GraphError(f"{where}: missing output shape (give out_shape or out_bytes)")
            object.__setattr__(self, "out_bytes", math.prod(self.out_shape) * DTYPE_BYTES[self.dtype])
        for what in ("flops", "param_bytes", "out_bytes"):
            _check_cost(getattr(self, what), f"{where}: {what}")
        object.__setattr__(self, "flops", float(self.flops))
        object.__setattr__(self, "param_bytes", int(self.param_bytes))
        object.__setattr__(self, "out_bytes", int(self.out_bytes))
        times = dict(self.times)
        for node, t in times.items():
            _check_cost(t, f"{where}: measured time on {node!r}")
        object.__setattr__(self, "times", MappingProxyType({k: float(v) for k, v in times.items()}))
        object.__setattr__(self, "source", tuple(self.source))
        if self.window is not None and self.op not in WINDOW_OPS:
            raise GraphError(f"{where}: op {self.op!r} cannot have a window (only conv/pool)")

    @property
    def is_map(self) -> bool:
        """True when the output is a 4-D ``(N, C, H, W)`` feature map."""
        return self.out_shape is not None and len(self.out_shape) == 4

    @property
    def tileable(self) -> bool:
        """True when the layer may sit inside a spatially tiled block."""
        if self.op not in SPATIAL_OPS or not self.is_map:
            return False
        return self.op not in WINDOW_OPS or self.window is not None


def _check_cost(value, what: str) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GraphError(f"{what} must be a number, got {value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise GraphError(f"{what} is {number}; costs must be finite")
    if number < 0:
        raise GraphError(f"{what} is negative ({number})")


@dataclass(frozen=True, eq=False)
class GraphArrays:
    """A :class:`LayerGraph` as numpy arrays, layers indexed by position in its order.

    ``src``, ``dst``: the edges, sorted as :attr:`LayerGraph.edges`; ``out_bytes``,
    ``param_bytes``: per layer; ``is_input``, ``is_sink``: masks of the inputs and of the
    layers whose outputs are results.

    >>> g = LayerGraph([Layer("x", "input", out_bytes=4), Layer("f", "other", out_bytes=2)],
    ...                [("x", "f")])
    >>> g.arrays.src.tolist(), g.arrays.dst.tolist(), g.arrays.is_sink.tolist()
    ([0], [1], [False, True])
    """

    src: np.ndarray
    dst: np.ndarray
    out_bytes: np.ndarray
    param_bytes: np.ndarray
    is_input: np.ndarray
    is_sink: np.ndarray

    @classmethod
    def of(cls, graph: "LayerGraph") -> "GraphArrays":
        """The arrays of ``graph``."""
        index, layers = graph.index, graph.layers
        edges = graph.edges
        arrays = cls(
            src=np.array([index[u] for u, _ in edges], dtype=np.intp),
            dst=np.array([index[v] for _, v in edges], dtype=np.intp),
            out_bytes=np.array([layers[n].out_bytes for n in graph.order], dtype=np.int64),
            param_bytes=np.array([layers[n].param_bytes for n in graph.order], dtype=np.int64),
            is_input=np.array([layers[n].op == "input" for n in graph.order], dtype=bool),
            is_sink=np.array([not graph.succs(n) for n in graph.order], dtype=bool),
        )
        for array in (arrays.src, arrays.dst, arrays.out_bytes, arrays.param_bytes,
                      arrays.is_input, arrays.is_sink):
            array.setflags(write=False)
        return arrays


class LayerGraph:
    """A validated, immutable DAG of :class:`Layer` records.

    Parameters
    ----------
    layers : the layers; their order breaks ties in the topological order.
    edges : ``(producer, consumer)`` pairs of layer names.

    Raises
    ------
    GraphError
        On a cycle, an edge naming an unknown layer, a duplicate name, a layer without
        inputs that is not an ``"input"``, an input layer with predecessors, or a bad cost.

    Examples
    --------
    >>> g = LayerGraph([Layer("x", "input", out_bytes=4), Layer("y", "act", out_bytes=4)],
    ...                [("x", "y")])
    >>> g.preds("y"), g.succs("x"), len(g)
    (('x',), ('y',), 2)
    """

    def __init__(self, layers: Iterable[Layer], edges: Iterable[tuple[str, str]]):
        graph = nx.DiGraph()
        for layer in layers:
            if not isinstance(layer, Layer):
                raise GraphError(f"expected Layer records, got {type(layer).__name__}")
            if layer.name in graph:
                raise GraphError(f"duplicate layer name {layer.name!r}")
            graph.add_node(layer.name, layer=layer)
        for u, v in edges:
            for end in (u, v):
                if end not in graph:
                    raise GraphError(f"edge ({u!r}, {v!r}) names unknown layer {end!r}")
            if u == v:
                raise GraphError(f"layer {u!r} feeds itself (cycle)")
            graph.add_edge(u, v)
        if len(graph) == 0:
            raise GraphError("the graph has no layers")
        if not nx.is_directed_acyclic_graph(graph):
            cycle = [u for u, _ in nx.find_cycle(graph)]
            raise GraphError(f"the graph has a cycle through layers {cycle}")
        position = {name: i for i, name in enumerate(graph.nodes)}
        order = tuple(nx.lexicographical_topological_sort(graph, key=position.__getitem__))
        for name in order:
            layer = graph.nodes[name]["layer"]
            has_preds = graph.in_degree(name) > 0
            if layer.op == "input" and has_preds:
                raise GraphError(f"input layer {name!r} has predecessors")
            if layer.op != "input" and not has_preds:
                raise GraphError(
                    f"layer {name!r} (op {layer.op!r}) has no inputs; feed it from an 'input' layer"
                )
        nx.freeze(graph)
        self._graph = graph
        self._order = order
        self._index = MappingProxyType({name: i for i, name in enumerate(order)})
        self._layers = MappingProxyType({name: graph.nodes[name]["layer"] for name in order})
        self._preds = MappingProxyType(
            {n: tuple(sorted(graph.predecessors(n), key=self._index.__getitem__)) for n in order}
        )
        self._succs = MappingProxyType(
            {n: tuple(sorted(graph.successors(n), key=self._index.__getitem__)) for n in order}
        )
        self._arrays = GraphArrays.of(self)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_networkx(cls, graph: nx.DiGraph) -> "LayerGraph":
        """Build from a networkx DiGraph whose node attributes are :class:`Layer` fields.

        Node attributes: ``op`` (required), ``flops``, ``param_bytes``, ``out_shape``,
        ``dtype``, ``out_bytes``, ``window`` (a :class:`Window` or a dict of its fields),
        ``times`` (``{node_name: seconds}``). A node may instead carry a ready ``layer``.
        The input graph is not modified.

        >>> import networkx as nx
        >>> G = nx.DiGraph()
        >>> G.add_node("in", op="input", out_bytes=10)
        >>> G.add_node("c", op="conv", flops=5e6, out_bytes=20)
        >>> G.add_edge("in", "c")
        >>> LayerGraph.from_networkx(G).total_flops
        5000000.0
        """
        fields = set(Layer.__dataclass_fields__) - {"name"}
        layers = []
        for name, attrs in graph.nodes(data=True):
            if isinstance(attrs.get("layer"), Layer):
                layers.append(attrs["layer"])
                continue
            if "op" not in attrs:
                raise GraphError(f"layer {name!r} has no 'op' attribute")
            unknown = set(attrs) - fields
            if unknown:
                raise GraphError(f"layer {name!r}: unknown attributes {sorted(unknown)}")
            kwargs = dict(attrs)
            if isinstance(kwargs.get("window"), Mapping):
                kwargs["window"] = Window(**kwargs["window"])
            layers.append(Layer(name=str(name), **kwargs))
        return cls(layers, [(str(u), str(v)) for u, v in graph.edges])

    def to_networkx(self) -> nx.DiGraph:
        """A mutable copy as a networkx DiGraph with a ``layer`` attribute per node."""
        return nx.DiGraph(self._graph)

    def replace(self, layers: Iterable[Layer]) -> "LayerGraph":
        """A new graph with some layer records replaced (same names and edges).

        >>> g = LayerGraph([Layer("x", "input", out_bytes=4)], [])
        >>> g.replace([Layer("x", "input", out_bytes=8)])["x"].out_bytes
        8
        """
        new = {layer.name: layer for layer in layers}
        missing = set(new) - set(self._layers)
        if missing:
            raise GraphError(f"replace() names unknown layers {sorted(missing)}")
        return LayerGraph([new.get(n, self._layers[n]) for n in self._order], self._graph.edges)

    # -- queries ------------------------------------------------------------------------
    @property
    def arrays(self) -> "GraphArrays":
        """The graph as read-only numpy arrays indexed by position in :attr:`order`."""
        return self._arrays

    @property
    def nx(self) -> nx.DiGraph:
        """The underlying frozen networkx DiGraph (node attribute ``layer``)."""
        return self._graph

    @property
    def order(self) -> tuple[str, ...]:
        """Layer names in a deterministic topological order."""
        return self._order

    @property
    def index(self) -> Mapping[str, int]:
        """Position of each layer in :attr:`order`."""
        return self._index

    @property
    def layers(self) -> Mapping[str, Layer]:
        """Layer records by name, in topological order."""
        return self._layers

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the model inputs (layers of op ``"input"``)."""
        return tuple(n for n in self._order if self._layers[n].op == "input")

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names of the layers whose outputs are results (the sinks)."""
        return tuple(n for n in self._order if not self._succs[n])

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """All ``(producer, consumer)`` pairs, sorted topologically."""
        return tuple((u, v) for u in self._order for v in self._succs[u])

    @property
    def total_flops(self) -> float:
        """Sum of FLOPs over all layers."""
        return float(sum(layer.flops for layer in self._layers.values()))

    @property
    def total_param_bytes(self) -> int:
        """Sum of parameter bytes over all layers."""
        return int(sum(layer.param_bytes for layer in self._layers.values()))

    def preds(self, name: str) -> tuple[str, ...]:
        """Producers of the tensors ``name`` reads, in topological order."""
        return self._preds[name]

    def succs(self, name: str) -> tuple[str, ...]:
        """Consumers of the tensor ``name`` produces, in topological order."""
        return self._succs[name]

    def __getitem__(self, name: str) -> Layer:
        try:
            return self._layers[name]
        except KeyError:
            raise GraphError(f"no layer named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._layers

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return (
            f"LayerGraph({len(self)} layers, {self._graph.number_of_edges()} edges, "
            f"{self.total_flops / 1e9:.3g} GFLOPs)"
        )
