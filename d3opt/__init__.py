"""d3opt: where each layer of a DNN runs across device, edge and cloud -- and how good that is.

>>> import d3opt
>>> net = d3opt.Network(device_edge=d3opt.Link.mbps(20, ms=20),
...                     edge_edge=d3opt.Link.mbps(1000, ms=1),
...                     edge_cloud=d3opt.Link.mbps(50, ms=30))
>>> net.device_edge.bandwidth
2500000.0

Importing d3opt does not import torch or onnx; the frontends and the executor do, when used.
"""

from __future__ import annotations

import importlib

from d3opt.compare import compare  # eager: the submodule d3opt.compare would shadow it
from d3opt.cost import CostModel
from d3opt.errors import (ConfigError, D3optError, GraphError, InfeasibleError, PlanError,
                          SolverError)
from d3opt.graph import Layer, LayerGraph, Window
from d3opt.plan import Evaluation, Plan, SolveInfo, TiledBlock, evaluate, score
from d3opt.solve import solve
from d3opt.system import Link, Network, Node, Nodes, Scenario, Tier, load_scenario, scenario

__version__ = "0.1.0"

#: Public names provided by submodules that import heavy dependencies, loaded on first use.
_LAZY = {
    "from_torch": "d3opt.frontends.torch",
    "from_onnx": "d3opt.frontends.onnx",
    "from_profile": "d3opt.frontends.profile",
    "validate": "d3opt.executor",
    "Resolver": "d3opt.solvers.incremental",
    "export_model": "d3opt.solvers.milp",
    "zoo": "d3opt.zoo",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if name == "zoo" else getattr(module, name)
    raise AttributeError(f"module 'd3opt' has no attribute {name!r}")


__all__ = [
    "ConfigError", "CostModel", "D3optError", "Evaluation", "GraphError", "InfeasibleError",
    "Layer", "LayerGraph", "Link", "Network", "Node", "Nodes", "Plan", "PlanError",
    "Scenario", "SolveInfo", "SolverError", "Tier", "TiledBlock", "Window", "evaluate",
    "load_scenario", "scenario", "score", "solve", "compare", *_LAZY,
]
