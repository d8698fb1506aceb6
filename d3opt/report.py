"""Readable text reports of plans, shared by the command-line tools.

:func:`plan_table` shows where a plan runs each part of the graph (contiguous layer ranges
per tier in topological order), its tiled blocks, the latency of each stage and the bytes on
each link; :func:`format_table` lays out any rows as aligned columns.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> from d3opt.cost import CostModel
>>> from d3opt.plan import Plan, score
>>> g = LayerGraph([Layer("x", "input", out_bytes=2000), Layer("a", "conv", flops=2e9,
...                 out_bytes=1000), Layer("b", "linear", flops=1e9, out_bytes=40)],
...                [("x", "a"), ("a", "b")])
>>> nodes = Nodes(Node("d", flops=1e10), [Node("e", flops=1e11)], Node("c", flops=1e12))
>>> cost = CostModel(g, nodes, Network(Link(1e6, 0.01), Link(1e8), Link(1e6, 0.02)))
>>> plan = score(Plan({"x": "device", "a": "device", "b": "edge"}), cost)
>>> print(plan_table(plan, g))  # doctest: +NORMALIZE_WHITESPACE
latency 231.040 ms
<BLANKLINE>
tier    first  last  layers  GFLOPs
device  x      a          2   2.000
edge    b      b          1   1.000
<BLANKLINE>
stage              ms
device        200.000
device->edge   11.000
edge           10.000
return         10.040
<BLANKLINE>
link             KB
device->edge  1.000
edge->device  0.040
backbone (edge<->cloud): 0.000 KB
"""

from __future__ import annotations

from collections.abc import Sequence

from d3opt.graph import LayerGraph
from d3opt.plan import STAGES, Plan


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
                 numeric: Sequence[bool] | None = None) -> str:
    """Rows as aligned text columns under ``headers`` (numeric columns right-aligned).

    ``numeric`` says which columns to right-align; by default, columns whose cells are all
    ints or floats.

    >>> print(format_table(["name", "n"], [["a", 1], ["bcd", 10]]))
    name   n
    a      1
    bcd   10
    """
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    if numeric is None:
        numeric = [bool(rows) and all(isinstance(row[j], (int, float)) for row in rows)
                   for j in range(len(headers))]
    widths = [max(len(row[j]) for row in cells) for j in range(len(headers))]
    lines = []
    for row in cells:
        padded = [c.rjust(w) if right else c.ljust(w)
                  for c, w, right in zip(row, widths, numeric)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _runs(plan: Plan, graph: LayerGraph) -> list[tuple[str, tuple[str, ...], int | None]]:
    """Maximal runs of consecutive layers (topological order) on one tier and tiled block."""
    block_of = {name: i for i, tb in enumerate(plan.tiles) for name in tb.layers}
    runs: list[tuple[str, list[str], int | None]] = []
    for name in graph.order:
        key = (plan.assignment[name].name.lower(), block_of.get(name))
        if runs and (runs[-1][0], runs[-1][2]) == key:
            runs[-1][1].append(name)
        else:
            runs.append((key[0], [name], key[1]))
    return [(tier, tuple(names), block) for tier, names, block in runs]


def plan_table(plan: Plan, graph: LayerGraph) -> str:
    """A readable report of ``plan`` on ``graph``.

    Sections: the latency (and how the plan was found, when known); contiguous layer ranges
    per tier in topological order (first and last layer, layer count, GFLOPs, and the tile
    count of a tiled block); the tiled blocks (tile count, edge nodes taking part); the
    latency of each non-empty stage (ms); the bytes on each used link (KB) and on the
    backbone. An unscored plan shows only its layer ranges.

    Parameters
    ----------
    plan : a plan assigning every layer of ``graph``.
    graph : the layer graph the plan is for.

    Returns
    -------
    str
        Several blank-line separated tables, no trailing newline.
    """
    sections = []
    if plan.evaluation is not None:
        head = f"latency {plan.latency * 1e3:.3f} ms"
        if plan.info is not None:
            head += f"   method {plan.method or plan.info.backend}, status {plan.info.status}"
            if plan.info.gap is not None:
                head += f", gap {plan.info.gap:.2%}"
            head += f", solved in {plan.info.wall_time:.3f} s"
        sections.append(head)
    rows = []
    for tier, names, block in _runs(plan, graph):
        gflops = sum(graph[n].flops for n in names) / 1e9
        k = plan.tiles[block].k if block is not None else None
        rows.append([tier, names[0], names[-1], len(names), f"{gflops:.3f}"]
                    + ([f"k={k}" if k else ""] if plan.tiles else []))
    headers = ["tier", "first", "last", "layers", "GFLOPs"] + (["tiles"] if plan.tiles else [])
    numeric = [False, False, False, True, True] + ([False] if plan.tiles else [])
    sections.append(format_table(headers, rows, numeric=numeric))
    if plan.evaluation is None:
        return "\n\n".join(sections)
    if plan.evaluation.blocks:
        blocks = [[bc.block.layers[0], bc.block.layers[-1], bc.k, ", ".join(bc.nodes),
                   f"{bc.time * 1e3:.3f}"] for bc in plan.evaluation.blocks]
        sections.append(format_table(["tiled block", "to", "k", "nodes", "ms"], blocks,
                                     numeric=[False, False, True, False, True]))
    stages = [[s, f"{plan.breakdown[s] * 1e3:.3f}"] for s in STAGES if plan.breakdown[s] > 0]
    if stages:
        sections.append(format_table(["stage", "ms"], stages, numeric=[False, True]))
    links = [[use, f"{nbytes / 1e3:.3f}"] for use, nbytes in plan.link_bytes.items() if nbytes]
    text = format_table(["link", "KB"], links, numeric=[False, True]) + "\n" if links else ""
    sections.append(text + f"backbone (edge<->cloud): {plan.backbone_bytes / 1e3:.3f} KB")
    return "\n\n".join(sections)


__all__ = ["format_table", "plan_table"]
