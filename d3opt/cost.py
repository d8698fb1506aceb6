"""Cost model: how long each layer takes on each node, and what a message costs.

A :class:`CostModel` is built once per (graph, nodes, network) and shared by every solver
and by :func:`d3opt.evaluate`, so that they cannot disagree about a number.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network, Tier
>>> g = LayerGraph([Layer("x", "input", out_bytes=4), Layer("f", "linear", flops=2e9,
...                 out_bytes=4)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e11))
>>> cost = CostModel(g, nodes, Network(Link(1e6), Link(1e8), Link(1e7)))
>>> cost.time("f", Tier.DEVICE), cost.time("f", Tier.EDGE)
(2.0, 0.2)
"""

from __future__ import annotations

import numpy as np

from d3opt.errors import ConfigError
from d3opt.graph import Layer, LayerGraph
from d3opt.system import Network, Node, Nodes, Tier


def layer_time(layer: Layer, node: Node, *, in_bytes: int = 0) -> float:
    """Seconds ``node`` needs to run ``layer`` once.

    A measured time wins: first the node's own ``times[layer.name]``, then the layer's
    ``times[node.name]``. Otherwise the roofline
    ``max(flops / node.flops, traffic / node.mem_bandwidth) + node.overhead`` with traffic
    = parameter + input + output bytes.

    >>> from d3opt.graph import Layer
    >>> layer_time(Layer("a", "linear", flops=1e9, out_bytes=0), Node("n", flops=1e9, overhead=0.5))
    1.5
    """
    if layer.name in node.times:
        return node.times[layer.name]
    if node.name in layer.times:
        return layer.times[node.name]
    if layer.op == "input":
        return 0.0
    if node.flops is None:
        raise ConfigError(
            f"node {node.name!r} has no flops and no measured time for layer {layer.name!r}"
        )
    seconds = layer.flops / node.flops
    if node.mem_bandwidth is not None:
        traffic = layer.param_bytes + in_bytes + layer.out_bytes
        seconds = max(seconds, traffic / node.mem_bandwidth)
    return seconds + node.overhead


class CostModel:
    """Per-layer times on every node and link costs for one problem instance.

    Attributes
    ----------
    graph, nodes, network : the instance.
    times : array ``(len(graph), 2 + K)``, seconds of each layer (rows in ``graph.order``)
        on the device, edge nodes ``0..K-1`` and the cloud (columns in ``nodes.all`` order).
    out_bytes : array of each layer's output bytes, in ``graph.order``.
    """

    def __init__(self, graph: LayerGraph, nodes: Nodes, network: Network):
        if not isinstance(graph, LayerGraph):
            raise TypeError(f"graph must be a LayerGraph, got {type(graph).__name__}")
        if not isinstance(nodes, Nodes) or not isinstance(network, Network):
            raise TypeError("nodes must be a d3opt.Nodes and network a d3opt.Network")
        self.graph, self.nodes, self.network = graph, nodes, network
        in_bytes = {
            name: sum(graph[p].out_bytes for p in graph.preds(name)) for name in graph.order
        }
        self.times = np.array(
            [
                [layer_time(graph[name], node, in_bytes=in_bytes[name]) for node in nodes.all]
                for name in graph.order
            ],
            dtype=float,
        )
        self.out_bytes = np.array([graph[name].out_bytes for name in graph.order], dtype=float)
        self._tier_times = self.times[:, [0, 1, 1 + nodes.K]]
        for array in (self.times, self.out_bytes, self._tier_times):
            array.setflags(write=False)
        self._column = {node.name: j for j, node in enumerate(nodes.all)}

    @property
    def tier_times(self) -> np.ndarray:
        """Array ``(len(graph), 3)``: seconds on the device, the coordinator and the cloud."""
        return self._tier_times

    def time(self, layer: str, tier: Tier) -> float:
        """Seconds to run ``layer`` untiled on ``tier`` (the coordinator for the edge)."""
        return float(self.tier_times[self.graph.index[layer], int(tier)])

    def node_time(self, layer: str, node: str) -> float:
        """Seconds to run ``layer`` on the node named ``node``."""
        try:
            column = self._column[node]
        except KeyError:
            raise ConfigError(f"no node named {node!r}") from None
        return float(self.times[self.graph.index[layer], column])

    def edge_times(self, layer: str) -> np.ndarray:
        """Seconds of ``layer`` on each edge node, coordinator first."""
        return self.times[self.graph.index[layer], 1 : 1 + self.nodes.K]
