"""Graph surgery: cut an exported program into the runnable pieces a plan asks for.

The *policy* (which layer runs where) comes from a :class:`d3opt.Plan`; this module only
turns it into one partition number per exported graph node and lets
:func:`torch.fx.passes.split_module.split_module` do the cutting. A piece is an
``fx.GraphModule`` whose inputs and outputs are exactly the tensors that cross its boundary,
named after the exported graph nodes that produce them.

Pieces, in the order they run: the device piece, then on the edge an untiled segment, the
first tiled block, the next segment, ... and finally the cloud piece (empty pieces are left
out). A tiled block is its own piece so that it can be run once per tile.

Examples
--------
>>> import torch, d3opt
>>> from d3opt.executor.pieces import cut, export
>>> model, x = d3opt.zoo.get("tinycnn"), d3opt.zoo.example_input("tinycnn")
>>> program = export(model, (x,))
>>> g = d3opt.from_torch(model, x)
>>> plan = d3opt.Plan({n: "device" if g.index[n] < 5 else "cloud" for n in g.order})
>>> split = cut(program, g, plan)
>>> [p.name for p in split.pieces]
['device', 'cloud']
>>> split.pieces[1].inputs == split.pieces[0].outputs
True
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import fx
from torch.fx.passes.split_module import split_module

from d3opt.errors import GraphError, PlanError
from d3opt.graph import LayerGraph
from d3opt.plan import Plan
from d3opt.system import Tier
from d3opt.tiling import make_block


@dataclass(frozen=True)
class Piece:
    """One runnable part of the model.

    Attributes
    ----------
    name : ``"device"``, ``"edge"``, ``"edge.1"``..., ``"block.1"``..., ``"cloud"``.
    tier : the tier that runs it.
    layers : the layer names it computes, in topological order.
    inputs, outputs : names of the tensors (exported node names) it reads and produces.
    module : the ``fx.GraphModule``; ``module(*inputs)`` returns a tuple of ``outputs``.
    block : index into ``plan.tiles`` for a tiled block, else None.
    """

    name: str
    tier: Tier
    layers: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    module: fx.GraphModule
    block: int | None = None


@dataclass(frozen=True)
class Split:
    """The pieces of a model under one plan and how tensors flow between them.

    ``producer`` maps a tensor name to the layer whose output it is; ``inputs`` and
    ``outputs`` are the model's input and result tensors in the model's own order.
    """

    pieces: tuple[Piece, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    producer: Mapping[str, str]

    def piece(self, name: str) -> Piece:
        """The piece called ``name``."""
        for piece in self.pieces:
            if piece.name == name:
                return piece
        raise KeyError(name)


def export(model: torch.nn.Module, inputs: Sequence[torch.Tensor], *,
           dtype: torch.dtype | None = None) -> torch.export.ExportedProgram:
    """Export ``model`` through the torch frontend, in ``dtype`` when given.

    The user's model is never modified: a cast happens on a deep copy.
    """
    from d3opt.frontends.torch import export_program

    if dtype is not None:
        model = copy.deepcopy(model).to(dtype)
        inputs = tuple(t.to(dtype) if t.is_floating_point() else t for t in inputs)
    args = tuple(inputs)
    return export_program(model, args[0] if len(args) == 1 else args)


def node_layers(module: fx.GraphModule, graph: LayerGraph) -> dict[str, str]:
    """The layer each computing node of ``module`` belongs to (policy-free bookkeeping).

    Nodes named in a layer's ``source`` belong to it. A node no layer claims (glue such as
    ``getitem``) joins the latest layer among its inputs, or failing that its first user's.
    """
    owner = {name: layer.name for layer in graph.layers.values() for name in layer.source}
    nodes = [n for n in module.graph.nodes if n.op in ("placeholder", "call_function")]
    missing = [n.name for n in nodes if n.op == "placeholder" and n.name not in owner]
    if missing:
        raise GraphError(f"model inputs {missing} belong to no layer of the graph; build the "
                         "graph with d3opt.from_torch from the same model and input")
    unclaimed = [n for n in nodes if n.name not in owner]
    for node in unclaimed:
        inputs = [owner[p.name] for p in node.all_input_nodes if p.name in owner]
        if inputs:
            owner[node.name] = max(inputs, key=graph.index.__getitem__)
    for node in reversed(unclaimed):
        if node.name not in owner:
            users = [owner[u.name] for u in node.users if u.name in owner]
            if not users:
                raise GraphError(f"exported node {node.name!r} belongs to no layer")
            owner[node.name] = min(users, key=graph.index.__getitem__)
    unknown = sorted({v for v in owner.values()} - set(graph.order))
    if unknown:
        raise GraphError(f"layers {unknown} are not in the graph")
    known = {n.name for n in nodes}
    stale = sorted(s for layer in graph.layers.values() for s in layer.source if s not in known)
    if stale:
        raise GraphError(f"layer sources {stale[:5]} are not nodes of the exported program; "
                         "the graph was built from another model or input")
    return owner


def piece_of_layer(graph: LayerGraph, plan: Plan) -> dict[str, tuple[int, str, Tier, int | None]]:
    """The policy: layer -> ``(partition, piece name, tier, block index)``.

    Partitions are numbered in the order pieces run (device 0, then edge segments and tiled
    blocks alternating, cloud last). An untiled edge layer goes to the segment after the
    last tiled block among its ancestors.
    """
    assignment = plan.assignment
    blocks = [make_block(graph, tb.layers) for tb in plan.tiles]
    order = sorted(range(len(blocks)), key=lambda i: graph.index[blocks[i].exit])
    rank = {i: r + 1 for r, i in enumerate(order)}  # block i is the rank[i]-th to run
    in_block = {name: i for i, b in enumerate(blocks) for name in b.layers}
    for name in graph.order:
        if name not in assignment:
            raise PlanError(f"plan assigns no tier to layer {name!r}")
    segment: dict[str, int] = {}
    result = {}
    for name in graph.order:
        tier = assignment[name]
        seg = max((segment[p] for p in graph.preds(name)), default=0)
        if name in in_block:
            if tier != Tier.EDGE:
                raise PlanError(f"tiled layer {name!r} must run on the edge tier")
            r = rank[in_block[name]]
            segment[name] = r
            result[name] = (2 * r, f"block.{r}", Tier.EDGE, in_block[name])
            continue
        segment[name] = seg
        if tier == Tier.DEVICE:
            result[name] = (0, "device", tier, None)
        elif tier == Tier.EDGE:
            result[name] = (2 * seg + 1, "edge" if seg == 0 else f"edge.{seg}", tier, None)
        else:
            result[name] = (2 * len(blocks) + 2, "cloud", tier, None)
    return result


def _bind_weights(top: fx.GraphModule, call: fx.Node, sub: fx.GraphModule) -> fx.GraphModule:
    """Turn the weight inputs split_module gives a piece back into the piece's own attributes."""
    graph = sub.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for arg, ph in zip(call.args, placeholders):
        if isinstance(arg, fx.Node) and arg.op == "get_attr":
            value = top
            for part in arg.target.split("."):
                value = getattr(value, part)
            attr = f"w_{ph.name}"
            if isinstance(value, torch.nn.Parameter):
                sub.register_parameter(attr, value)
            else:
                sub.register_buffer(attr, value)
            with graph.inserting_before(ph):
                node = graph.get_attr(attr)
            node.meta = dict(ph.meta)
            ph.replace_all_uses_with(node)
            graph.erase_node(ph)
    sub.recompile()
    return sub


def cut(program: torch.export.ExportedProgram, graph: LayerGraph, plan: Plan) -> Split:
    """Cut ``program`` into the pieces ``plan`` describes (see the module docstring).

    Raises
    ------
    GraphError
        When ``graph`` does not describe ``program`` (sources naming unknown nodes).
    PlanError
        When the plan misses layers or tiles a non-edge layer.
    """
    module = program.module()
    for node in list(module.graph.nodes):
        if node.op == "call_module" and not node.users:  # export's input guard
            module.graph.erase_node(node)
    module.graph.eliminate_dead_code()
    module.recompile()
    owner = node_layers(module, graph)
    policy = piece_of_layer(graph, plan)
    partition = {node: policy[layer][0] for node, layer in owner.items()}
    top = split_module(module, module, lambda n: partition[n.name], keep_original_order=False,
                       keep_original_node_name=True, tuple_return=True)
    inputs = tuple(n.name for n in top.graph.nodes if n.op == "placeholder")
    (output,) = [n for n in top.graph.nodes if n.op == "output"]
    names: dict[fx.Node, str] = {n: n.name for n in top.graph.nodes if n.op == "placeholder"}
    by_partition = {p[0]: p for p in policy.values()}
    pieces = []
    for call in (n for n in top.graph.nodes if n.op == "call_module"):
        sub = getattr(top, call.target)
        number = int(call.target.rsplit("_", 1)[1])
        _, piece_name, tier, block = by_partition[number]
        out_node = next(n for n in sub.graph.nodes if n.op == "output")
        outs = tuple(a.name for a in out_node.args[0])
        for user in call.users:
            names[user] = outs[user.args[1]]
        piece_inputs = tuple(names[a] for a in call.args if a.op != "get_attr")
        bound = _bind_weights(top, call, sub)
        layers = tuple(n for n in graph.order if policy[n][0] == number)
        pieces.append(Piece(piece_name, tier, layers, piece_inputs, outs, bound, block))
    pieces.sort(key=lambda p: next(v[0] for v in policy.values() if v[1] == p.name))
    outputs = tuple(names[a] for a in output.args[0])
    return Split(pieces=tuple(pieces), inputs=inputs, outputs=outputs,
                 producer=dict(owner))
