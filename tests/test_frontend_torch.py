"""The torch frontend: layer grouping, FLOPs, shapes and errors on the zoo and small models."""

import networkx as nx
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from d3opt import GraphError, zoo
from d3opt.frontends.torch import export_program, from_torch

ALL = zoo.names(include_demo=True)


@pytest.fixture(scope="module", params=ALL)
def case(request):
    """(name, model, input, graph, run) for one zoo model, built once per test module.

    ``run`` holds one real forward pass: total FLOPs by FlopCounterMode, the result and
    the (shape, bytes) of every leaf module's output.
    """
    name = request.param
    model, x = zoo.get(name), zoo.example_input(name)
    return name, model, x, from_torch(model, x), _forward(model, x)


def _forward(model, x):
    seen, hooks = {}, []
    for path, module in model.named_modules():
        if next(module.children(), None) is None:
            def hook(_m, _i, out, path=path):
                seen[path] = (tuple(out.shape), out.numel() * out.element_size())
            hooks.append(module.register_forward_hook(hook))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        result = model(x)
    for h in hooks:
        h.remove()
    return {"flops": counter.get_total_flops(), "result": result, "leaves": seen}


def _node_outputs(model, x):
    """Every exported graph node's real output, by node name."""
    module = export_program(model, x).module()
    values = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            values[n.name] = out
            return out

    with torch.no_grad():
        Recorder(module).run(x)
    return values


def test_total_flops_match_flop_counter(case):
    *_, g, run = case
    assert g.total_flops == pytest.approx(run["flops"], rel=0.01)
    assert g.total_flops > 0


def test_graph_shape_and_output(case):
    _, _, x, g, run = case
    assert nx.is_directed_acyclic_graph(g.nx)
    assert g.inputs == ("x",) and g["x"].out_shape == tuple(x.shape)
    assert len(g.outputs) == 1
    assert g[g.outputs[0]].out_shape == tuple(run["result"].shape)


def test_out_bytes_are_the_real_tensors(case):
    _, model, x, g, run = case
    leaves = run["leaves"]
    nodes = _node_outputs(model, x)
    modules = dict(model.named_modules())
    for name in g.order[1:]:
        layer = g[name]
        if name in modules:  # a leaf-module call: compare with the forward hook
            assert (layer.out_shape, layer.out_bytes) == leaves[name], name
        else:  # a functional layer: one exported node, run for real
            assert len(layer.source) == 1, name
            out = nodes[layer.source[0]]
            assert layer.out_bytes == out.numel() * out.element_size(), name
            assert layer.out_shape == tuple(out.shape), name


def test_parameters(case):
    name, model, _, g, _ = case
    params = sum(p.numel() for p in model.parameters())
    if name in zoo.PUBLISHED_PARAMS:
        assert abs(params - zoo.PUBLISHED_PARAMS[name]) <= 50_000
    # every parameter and buffer that inference reads is read by exactly one layer
    # (batch-norm's num_batches_tracked counter is not read in eval mode)
    state = sum(t.numel() * t.element_size() for k, t in model.state_dict().items()
                if not k.endswith("num_batches_tracked"))
    assert g.total_param_bytes == state


def test_conv_and_pool_windows(case):
    _, model, _, g, _ = case
    convs = {p: m for p, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert {n for n in g if g[n].op == "conv"} == set(convs)
    for path, conv in convs.items():
        w = g[path].window
        assert (w.kernel, w.stride, w.padding, w.dilation, w.groups) == (
            conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups)
    for path, pool in model.named_modules():
        if isinstance(pool, nn.MaxPool2d):
            w = g[path].window
            k = (pool.kernel_size,) * 2
            assert (w.kernel, w.stride, w.ceil_mode) == (k, (pool.stride,) * 2, pool.ceil_mode)


def test_dag_structure_of_resnet_and_googlenet():
    g = from_torch(zoo.get("resnet18"), zoo.example_input("resnet18"))
    assert g["layer1.0.add"].op == "add"
    assert set(g.preds("layer1.0.add")) == {"layer1.0.bn2", "maxpool"}
    assert set(g.preds("layer2.0.add")) == {"layer2.0.bn2", "layer2.0.downsample.bn"}
    # one tensor, several consumers: maxpool feeds conv1 and the add of layer1.0
    assert set(g.succs("maxpool")) == {"layer1.0.conv1", "layer1.0.add"}
    assert g["avgpool"].op == "global_pool" and g["flatten"].op == "flatten"
    assert g["fc"].op == "linear" and g["layer1.0.bn1"].op == "bn"
    ge = from_torch(zoo.get("googlenet"), zoo.example_input("googlenet"))
    assert ge["inception3a.cat"].op == "concat"
    assert len(ge.preds("inception3a.cat")) == 4
    assert ge["dropout"].op == "identity"


def test_export_is_deterministic_and_names_match_sources():
    model, x = zoo.get("tinycnn"), zoo.example_input("tinycnn")
    first = [n.name for n in export_program(model, x).graph.nodes]
    assert first == [n.name for n in export_program(model, x).graph.nodes]
    g = from_torch(model, x)
    sources = [s for n in g for s in g[n].source]
    assert len(sources) == len(set(sources)) and set(sources) <= set(first)


def test_model_is_not_modified():
    model = zoo.get("tinycnn").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = from_torch(model, zoo.example_input("tinycnn", batch=2))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert g["x"].out_shape == (2, 3, 32, 32)


def test_fx_fallback_agrees_with_export():
    model, x = zoo.get("tinycnn"), zoo.example_input("tinycnn")
    a, b = from_torch(model, x), from_torch(model, x, tracer="fx")
    assert a.order == b.order and a.edges == b.edges
    for n in a:
        la, lb = a[n], b[n]
        assert (la.op, la.flops, la.out_bytes, la.window) == (lb.op, lb.flops, lb.out_bytes,
                                                              lb.window), n


class Functional(nn.Module):
    """Functional ops, an in-place op, a view, an unknown op, dropout in eval."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.scale = nn.Parameter(torch.ones(1, 4, 1, 1))
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        y = nn.functional.conv2d(x, self.w, stride=2, padding=1)
        y = y * self.scale
        y = y.relu_()
        z = torch.cumsum(y, dim=1)
        s = y.mean(dim=(2, 3), keepdim=True)
        return self.drop(s.view(s.shape[0], -1)), z


def test_functional_ops_and_unknown_ops():
    model = Functional().eval()
    x = torch.randn(1, 3, 8, 8)
    g = from_torch(model, x, name="f")
    assert g["f/conv2d"].op == "conv" and g["f/conv2d"].window.stride == (2, 2)
    assert g["f/conv2d"].flops == 2 * 4 * 3 * 9 * 4 * 4
    assert g["f/conv2d"].param_bytes == 4 * 3 * 3 * 3 * 4
    assert g["f/mul"].op == "act" and g["f/mul"].param_bytes == 16
    assert g["f/relu"].op == "act"
    assert g["f/cumsum"].op == "other" and g.preds("f/cumsum") == ("f/relu",)
    assert g["f/mean"].op == "global_pool" and g["f/view"].op == "flatten"
    assert g["f/drop"].op == "identity"
    assert set(g.outputs) == {"f/drop", "f/cumsum"}


class DataDependent(nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x - 1


def test_errors():
    with pytest.raises(GraphError, match="DataDependent"):
        from_torch(DataDependent(), torch.ones(1, 3))
    with pytest.raises(GraphError, match="example_input"):
        from_torch(zoo.get("tinycnn"), [1, 2, 3])
    with pytest.raises(GraphError, match="nn.Module"):
        export_program(lambda x: x, torch.ones(1))
    with pytest.raises(GraphError, match="tracer"):
        from_torch(zoo.get("tinycnn"), zoo.example_input("tinycnn"), tracer="jit")
    with pytest.raises(GraphError, match="unknown zoo model 'lenet'"):
        zoo.get("lenet")
