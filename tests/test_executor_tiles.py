"""Random small CNNs, random plans and tilings: tiled blocks equal untiled ones (float64)."""

from __future__ import annotations

import hypothesis.strategies as st
import torch
from hypothesis import given, settings
from torch import nn

import d3opt
from d3opt.executor import Executor
from d3opt.tiling import candidate_blocks


class RandomCNN(nn.Module):
    """A chain of stages; a stage is a conv, a pool, or two branches joined by add/concat."""

    def __init__(self, stages):
        super().__init__()
        self.stages = stages
        self.mods = nn.ModuleList(m for stage in stages for m in stage[1])

    def forward(self, x):
        for kind, mods in self.stages:
            if kind == "single":
                x = mods[0](x)
            else:
                a, b = mods[0](x), mods[1](x)
                x = a + b if kind == "add" else torch.cat([a, b], 1)
        return x.mean((2, 3))


def _out(h, k, s, p, d, ceil=False):
    span = h + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= h + p:
        out -= 1
    return out


@st.composite
def cnns(draw):
    channels, height = draw(st.integers(1, 4)), draw(st.integers(5, 13))
    width = draw(st.integers(3, 9))
    stages, c, h = [], channels, height
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "pool", "add", "concat"]))
        k = draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        d = draw(st.integers(1, 2))
        s = draw(st.integers(1, 2))
        if kind in ("conv", "pool"):
            if kind == "conv":
                groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0]))
                out_c = groups * draw(st.integers(1, 3))
                mod = nn.Conv2d(c, out_c, k, stride=s, padding=p, dilation=d, groups=groups)
                new_h = _out(h, k, s, p, d)
            elif draw(st.booleans()):
                ceil = draw(st.booleans())
                mod, out_c = nn.MaxPool2d(k, stride=s, padding=p, dilation=d, ceil_mode=ceil), c
                new_h = _out(h, k, s, p, d, ceil)
            else:
                ceil = draw(st.booleans())
                mod, out_c = nn.AvgPool2d(k, stride=s, padding=p, ceil_mode=ceil), c
                new_h = _out(h, k, s, p, 1, ceil)
            if new_h < 4 or _out(width, k, s, p, d if isinstance(mod, nn.Conv2d) else 1) < 1:
                continue
            stages.append(("single", [mod]))
            c, h = out_c, new_h
        else:
            a = nn.Conv2d(c, c, 3, padding=d, dilation=d)
            b = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU())
            stages.append((kind, [a, b]))
            c = 2 * c if kind == "concat" else c
    if not stages:
        stages.append(("single", [nn.ReLU()]))
    torch.manual_seed(draw(st.integers(0, 2**16)))
    model = RandomCNN(stages).double().eval()
    x = torch.randn(1, channels, height, width, dtype=torch.float64)
    return model, x


@settings(max_examples=25)
@given(cnns(), st.data())
def test_random_tiled_blocks_equal_untiled(case, data):
    model, x = case
    graph = d3opt.from_torch(model, x)
    blocks = [b for b in candidate_blocks(graph) if graph[b.exit].out_shape[2] >= 2]
    if not blocks:
        return
    k_max = 4
    nodes = d3opt.Nodes(d3opt.Node("d", flops=1e9),
                        [d3opt.Node(f"e{i}", flops=data.draw(st.floats(1e9, 1e10)))
                         for i in range(k_max)], d3opt.Node("c", flops=1e11))
    link = d3opt.Link(1e7, 1e-3)
    network = d3opt.Network(link, link, link)
    runner = Executor(model, x, graph=graph, nodes=nodes, network=network)
    block = data.draw(st.sampled_from(blocks))
    k = data.draw(st.integers(2, min(k_max, graph[block.exit].out_shape[2])))
    first, last = graph.index[block.layers[0]], graph.index[block.exit]
    cloud_from = data.draw(st.integers(last + 1, len(graph)))
    tiers = {n: "device" if graph.index[n] < first else "edge" if graph.index[n] < cloud_from
             else "cloud" for n in graph.order}
    tiled = d3opt.Plan(tiers, tiles=[d3opt.TiledBlock(block.layers, k)])
    untiled = d3opt.Plan(tiers)
    tiled_report, untiled_report = runner.validate(tiled), runner.validate(untiled)
    assert tiled_report.ok, str(tiled_report)
    assert untiled_report.ok, str(untiled_report)
    # tiled vs untiled exit map of the block, directly
    job = runner.prepare(tiled)
    (piece,) = [p for p in job.split.pieces if p.block is not None]
    entry = torch.randn(graph[block.entry].out_shape, dtype=torch.float64)
    run = job.tiled[piece.name]
    with torch.inference_mode():
        whole = piece.module(entry.clone())[0]
        bands = [t.module(entry[:, :, t.in_rows[0]:t.in_rows[1] + 1].clone())[0]
                 for t in run.tiles]
    stitched = torch.cat(bands, 2)
    assert stitched.shape == whole.shape
    assert float((stitched - whole).abs().max()) <= 1e-12
