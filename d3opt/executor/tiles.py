"""Vertical separation at run time: one tiled block run as ``k`` row bands, then stitched.

For each tile, :func:`tile_modules` rewrites the block's piece into a graph that takes the
tile's input slice (halo included) and returns exactly the tile's band of the exit map:

- every layer computes only the rows that band needs (found by walking the exported graph
  backwards through each conv/pool window; the result must agree with
  :func:`d3opt.tiling.rows_needed` at every layer, so executor and cost model share one
  geometry, and a disagreement is raised);
- a consumer reading fewer rows than its producer made gets an explicit row slice;
- conv and pooling layers run with zero padding along H, and the padding rows they need at
  the true border of the map are added explicitly with ``aten.constant_pad_nd`` (zeros for
  conv and average pooling, ``-inf`` for max pooling). Padding never appears at a tile
  border, so the stitched result is the unsplit layer's result. A ``ceil_mode`` pool's
  overhang past the bottom padding is left to the pool itself, as in the unsplit map.

Examples
--------
>>> import torch, d3opt
>>> from d3opt.executor.pieces import cut, export
>>> from d3opt.executor.tiles import tile_modules
>>> model, x = d3opt.zoo.get("tinycnn"), d3opt.zoo.example_input("tinycnn")
>>> g = d3opt.from_torch(model, x)
>>> block = d3opt.tiling.candidate_blocks(g)[2]
>>> tiers = {n: "edge" if n in block.layers else
...          ("device" if g.index[n] < g.index[block.exit] else "cloud") for n in g.order}
>>> plan = d3opt.Plan(tiers, tiles=[d3opt.TiledBlock(block.layers, 2)])
>>> split = cut(export(model, (x,)), g, plan)
>>> piece = split.piece("block.1")
>>> tiles = tile_modules(piece, g, [(0, 15), (16, 31)])
>>> entry = torch.randn(g[block.entry].out_shape)
>>> with torch.no_grad():
...     bands = [t.module(entry[:, :, t.in_rows[0]:t.in_rows[1] + 1])[0] for t in tiles]
...     whole = piece.module(entry)[0]
>>> bool((torch.cat(bands, 2) - whole).abs().max() < 1e-5)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx

from d3opt.errors import PlanError
from d3opt.executor.pieces import Piece
from d3opt.graph import LayerGraph
from d3opt.tiling import make_block, rows_needed

aten = torch.ops.aten

_CONV = (aten.conv2d.default,)
_MAX_POOL = (aten.max_pool2d.default, aten.max_pool2d_with_indices.default)
_AVG_POOL = (aten.avg_pool2d.default,)


@dataclass(frozen=True)
class Tile:
    """One tile of a block: the rows it reads and writes, and the graph that computes it."""

    out_rows: tuple[int, int]
    in_rows: tuple[int, int]
    module: fx.GraphModule


@dataclass(frozen=True)
class _Window:
    kernel: int
    stride: int
    padding: int
    dilation: int
    pad_value: float
    pad_bottom_cap: int  # explicit bottom padding never goes past this many rows


def _pair(value, default):
    if value is None or value == []:
        value = default
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    return value if len(value) == 2 else (value[0], value[0])


def _arg(node: fx.Node, index: int, name: str, default):
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    value = node.meta.get("val")
    if isinstance(value, (tuple, list)):
        value = value[0]
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def _window(node: fx.Node) -> _Window | None:
    """Geometry along H of a conv/pool node, None for a row-wise node."""
    if node.target in _CONV:
        padding = _arg(node, 4, "padding", 0)
        if isinstance(padding, str):
            raise PlanError(f"cannot tile {node.name!r}: string padding {padding!r}")
        kernel = _shape(node.args[1])[2]
        return _Window(kernel, _pair(_arg(node, 3, "stride", 1), 1)[0], _pair(padding, 0)[0],
                       _pair(_arg(node, 5, "dilation", 1), 1)[0], 0.0, math.inf)
    if node.target in _MAX_POOL or node.target in _AVG_POOL:
        kernel = _pair(node.args[1], None)[0]
        stride = _pair(_arg(node, 2, "stride", []), kernel)[0]
        padding = _pair(_arg(node, 3, "padding", 0), 0)[0]
        if node.target in _MAX_POOL:
            dilation = _pair(_arg(node, 4, "dilation", 1), 1)[0]
            return _Window(kernel, stride, padding, dilation, -math.inf, padding)
        if padding and not _arg(node, 5, "count_include_pad", True):
            raise PlanError(f"cannot tile {node.name!r}: average pooling with padding and "
                            "count_include_pad=False")
        return _Window(kernel, stride, padding, 1, 0.0, padding)
    return None


def _no_h_padding(node: fx.Node) -> tuple[tuple, dict]:
    """The node's args and kwargs with the H padding set to zero (W padding kept)."""
    args, kwargs = list(node.args), dict(node.kwargs)
    if "padding" in kwargs:
        kwargs["padding"] = [0, _pair(kwargs["padding"], 0)[1]]
        return tuple(args), kwargs
    index, defaults = (4, [None, [1, 1]]) if node.target in _CONV else (3, [[]])
    while len(args) < index:  # fill bias/stride defaults up to the padding slot
        args.append(defaults[len(args) - 2])
    if len(args) == index:
        args.append(0)
    args[index] = [0, _pair(args[index], 0)[1]]
    return tuple(args), kwargs


def _required(node: fx.Node, rows: tuple[int, int]) -> tuple[int, int]:
    """Unclamped input rows that output ``rows`` of ``node`` read."""
    w = _window(node)
    if w is None:
        return rows
    a, b = rows
    return (a * w.stride - w.padding, b * w.stride - w.padding + w.dilation * (w.kernel - 1))


def _rows(piece: Piece, band: tuple[int, int]) -> dict[fx.Node, tuple[int, int]]:
    """Rows of each node's output that ``band`` of the exit needs (clamped, hulls of users)."""
    graph = piece.module.graph
    (entry,) = [n for n in graph.nodes if n.op == "placeholder"]
    (output,) = [n for n in graph.nodes if n.op == "output"]
    (exit_,) = output.args[0]
    inside = {n for n in graph.nodes if n.op == "call_function"} | {entry}
    need = {exit_: band}
    for node in reversed(list(graph.nodes)):
        if node not in need or node is entry:
            continue
        lo, hi = _required(node, need[node])
        for pred in node.all_input_nodes:
            if pred not in inside:
                continue
            height = _shape(pred)[2]
            span = (max(lo, 0), min(hi, height - 1))
            if pred in need:
                span = (min(span[0], need[pred][0]), max(span[1], need[pred][1]))
            need[pred] = span
    return need


def _check_geometry(piece: Piece, graph: LayerGraph, need: dict[fx.Node, tuple[int, int]],
                    band: tuple[int, int]) -> None:
    block = make_block(graph, piece.layers)
    expected = rows_needed(graph, block, band)
    by_name = {n.name: rows for n, rows in need.items()}
    for layer in (*block.layers, block.entry):
        node = (graph[layer].source or (layer,))[-1] if layer != block.entry else piece.inputs[0]
        if node in by_name and by_name[node] != expected[layer]:
            raise PlanError(
                f"tile rows of layer {layer!r} ({by_name[node]}) disagree with "
                f"d3opt.tiling.rows_needed ({expected[layer]}): the layer graph's window "
                "geometry does not match the exported program"
            )


def _tile_graph(piece: Piece, need: dict[fx.Node, tuple[int, int]]) -> fx.GraphModule:
    old = piece.module.graph
    new = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in old.nodes:
        if node.op == "placeholder":
            env[node] = new.placeholder(node.name)
        elif node.op == "get_attr":
            env[node] = new.get_attr(node.target)
        elif node.op == "output":
            new.output((env[node.args[0][0]],))
        elif node in need:
            env[node] = _tile_node(new, node, need, env)
    return fx.GraphModule(piece.module, new)


def _tile_node(new: fx.Graph, node: fx.Node, need, env) -> fx.Node:
    lo, hi = _required(node, need[node])
    window = _window(node)
    inplace = node.target._schema.name.endswith("_") if hasattr(node.target, "_schema") else False

    def feed(pred: fx.Node) -> fx.Node:
        if pred not in need:
            return env[pred]
        height = _shape(pred)[2]
        first, last = max(lo, 0), min(hi, height - 1)
        have = need[pred]
        value = env[pred]
        if (first, last) != have:
            value = new.call_function(aten.slice.Tensor, (value, 2, first - have[0], last - have[0] + 1))
            if inplace:
                value = new.call_function(aten.clone.default, (value,))
        if window is not None:
            top = first - lo
            bottom = min(hi - last, window.pad_bottom_cap)
            if top or bottom:
                value = new.call_function(aten.constant_pad_nd.default,
                                          (value, [0, 0, top, bottom], window.pad_value))
        return value

    args, kwargs = _no_h_padding(node) if window is not None else (node.args, node.kwargs)
    args, kwargs = fx.node.map_arg(args, feed), fx.node.map_arg(kwargs, feed)
    result = new.call_function(node.target, args, kwargs)
    result.name = node.name
    return result


def tile_modules(piece: Piece, graph: LayerGraph, bands: Sequence[tuple[int, int]]) -> list[Tile]:
    """The per-tile graphs of a tiled block's piece for the exit row ``bands``.

    Raises
    ------
    PlanError
        When a node of the block cannot be tiled or the geometry disagrees with
        :func:`d3opt.tiling.rows_needed`.
    """
    if len(piece.inputs) != 1 or len(piece.outputs) != 1:
        raise PlanError(f"piece {piece.name!r} is not a single-entry single-exit block")
    tiles = []
    for band in bands:
        need = _rows(piece, tuple(band))
        for node in need:
            if node.op == "call_function":
                _window(node)  # rejects untileable pools early, naming the node
                shape = _shape(node)
                if shape is None or len(shape) != 4:
                    raise PlanError(f"cannot tile node {node.name!r}: not a 4-D map")
        _check_geometry(piece, graph, need, tuple(band))
        entry = next(n for n in need if n.op == "placeholder")
        tiles.append(Tile(out_rows=tuple(band), in_rows=need[entry],
                          module=_tile_graph(piece, need)))
    return tiles
