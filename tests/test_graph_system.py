"""Validation of layer graphs and system descriptions: bad input, clear error, nothing built."""

import math

import networkx as nx
import pytest

from d3opt import (ConfigError, GraphError, Layer, LayerGraph, Link, Network, Node, Nodes,
                   Tier, scenario)
from d3opt.system import builtin_scenarios, load_scenario


def graph_of(**nodes):
    G = nx.DiGraph()
    for name, attrs in nodes.items():
        G.add_node(name, **attrs)
    return G


def test_from_networkx_builds_and_keeps_input_unchanged():
    G = graph_of(x={"op": "input", "out_bytes": 8}, a={"op": "conv", "flops": 3.0, "out_bytes": 4},
                 b={"op": "linear", "flops": 5.0, "out_bytes": 2, "times": {"dev": 0.5}})
    G.add_edges_from([("x", "a"), ("a", "b"), ("x", "b")])
    before = nx.to_dict_of_dicts(G), dict(G.nodes(data=True))
    g = LayerGraph.from_networkx(G)
    assert g.order == ("x", "a", "b") and g.total_flops == 8.0
    assert g.preds("b") == ("x", "a") and g.outputs == ("b",) and g["b"].times["dev"] == 0.5
    assert (nx.to_dict_of_dicts(G), dict(G.nodes(data=True))) == before


def test_cycle_is_named():
    G = graph_of(x={"op": "input", "out_bytes": 1}, a={"op": "act", "out_bytes": 1},
                 b={"op": "act", "out_bytes": 1})
    G.add_edges_from([("x", "a"), ("a", "b"), ("b", "a")])
    with pytest.raises(GraphError, match="cycle through layers"):
        LayerGraph.from_networkx(G)


@pytest.mark.parametrize(
    "attrs, message",
    [({"op": "conv"}, "missing output shape"),
     ({"op": "conv", "out_bytes": 4, "flops": math.nan}, "flops is nan"),
     ({"op": "conv", "out_bytes": -4}, "out_bytes is negative"),
     ({"op": "warp", "out_bytes": 4}, "unknown op 'warp'"),
     ({"op": "conv", "out_bytes": 4, "times": {"dev": -1.0}}, "measured time on 'dev'"),
     ({"out_bytes": 4}, "no 'op'"),
     ({"op": "conv", "out_bytes": 4, "colour": 1}, "unknown attributes")],
)
def test_bad_layers_name_the_layer(attrs, message):
    G = graph_of(x={"op": "input", "out_bytes": 1}, bad=attrs)
    G.add_edge("x", "bad")
    with pytest.raises(GraphError, match=message) as err:
        LayerGraph.from_networkx(G)
    assert "bad" in str(err.value) or "op" in str(err.value)


def test_dangling_and_orphan_layers():
    with pytest.raises(GraphError, match="unknown layer 'ghost'"):
        LayerGraph([Layer("x", "input", out_bytes=1)], [("x", "ghost")])
    with pytest.raises(GraphError, match="'a' .* has no inputs"):
        LayerGraph([Layer("x", "input", out_bytes=1), Layer("a", "act", out_bytes=1)], [])
    with pytest.raises(GraphError, match="duplicate layer name 'x'"):
        LayerGraph([Layer("x", "input", out_bytes=1)] * 2, [])


@pytest.mark.parametrize("bandwidth", [0, -5, math.nan, math.inf])
def test_bad_bandwidth(bandwidth):
    with pytest.raises(ConfigError, match="bandwidth"):
        Link(bandwidth=bandwidth)


def test_bad_nodes():
    with pytest.raises(ConfigError, match="node 'n': flops"):
        Node("n", flops=0)
    with pytest.raises(ConfigError, match="at least one edge node"):
        Nodes(Node("d", flops=1), [], Node("c", flops=1))
    with pytest.raises(ConfigError, match="unique"):
        Nodes(Node("d", flops=1), [Node("d", flops=1)], Node("c", flops=1))
    with pytest.raises(ConfigError, match="lan"):
        Network(Link(1), Link(1), Link(1), lan="wireless")


def test_replace_node_and_link_leave_originals():
    nodes = Nodes(Node("d", flops=1), [Node("e", flops=2)], Node("c", flops=3))
    faster = nodes.replace_node("e", flops=20)
    assert faster["e"].flops == 20 and nodes["e"].flops == 2
    net = Network(Link(1), Link(1), Link(1))
    assert net.with_link("edge_cloud", Link(9)).edge_cloud.bandwidth == 9
    assert net.edge_cloud.bandwidth == 1
    with pytest.raises(ConfigError, match="unknown link 'uplink'"):
        net.with_link("uplink", Link(1))


def test_friendly_units_and_tiers():
    link = Link.mbps(8, ms=20)
    assert (link.bandwidth, link.latency) == (1e6, 0.02)
    assert Node.gflops("n", 2).flops == 2e9
    assert Tier.parse("Cloud") is Tier.CLOUD
    with pytest.raises(ConfigError, match="unknown tier"):
        Tier.parse("fog")


def test_scenario_toml(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text(
        '[nodes.device]\nname = "pi"\ngflops = 13.5\n'
        '[[nodes.edge]]\nname = "xavier"\ngflops = 1400\ncount = 3\n'
        '[nodes.cloud]\nname = "gpu"\ntflops = 14\n'
        '[network.device_edge]\nmbps = 20\nms = 20\n'
        '[network.edge_edge]\nmbps = 1000\nms = 0.5\n'
        '[network.edge_cloud]\nmbps = 50\nms = 30\n'
    )
    sc = load_scenario(path)
    assert [n.name for n in sc.nodes.edge] == ["xavier0", "xavier1", "xavier2"]
    assert sc.nodes.cloud.flops == 14e12 and sc.network.device_cloud is None
    assert sc.network.edge_cloud.bandwidth == 50e6 / 8
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace("mbps = 50", "mbps = 0"))
    with pytest.raises(ConfigError, match="network.edge_cloud"):
        load_scenario(bad)
    with pytest.raises(ConfigError, match="unknown scenario"):
        scenario("no-such-scenario")


def test_every_shipped_scenario_loads():
    for name in builtin_scenarios():
        assert scenario(name).nodes.K >= 1
