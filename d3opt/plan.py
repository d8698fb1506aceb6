"""Plans and the one latency model every solver answers to.

:func:`evaluate` defines the latency of a plan (DESIGN section 1): the tiers work one after
another on one request -- device compute, device->edge message, edge compute (tiled blocks
included), edge->cloud message, device->cloud message (direct link only), cloud compute,
result return. A tensor is sent once per destination tier; all tensors crossing one link in
one direction travel as one message costing ``latency + bytes / bandwidth``. Without a direct
device-cloud link, device<->cloud data is relayed through the coordinator edge node.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network, Tier
>>> g = LayerGraph([Layer("x", "input", out_bytes=1000), Layer("f", "linear", flops=1e9,
...                 out_bytes=10)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e11))
>>> net = Network(Link(1e4, 0.01), Link(1e8), Link(1e6, 0.05))
>>> plan = Plan({"x": Tier.DEVICE, "f": Tier.EDGE})
>>> ev = evaluate(plan, g, nodes, net)
>>> round(ev.latency, 6), ev.breakdown["device->edge"], ev.link_bytes["edge->device"]
(0.221, 0.11, 10)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType

import numpy as np

from d3opt.cost import CostModel
from d3opt.errors import PlanError
from d3opt.graph import LayerGraph
from d3opt.system import Network, Nodes, Tier
from d3opt.tiling import BlockCost, block_cost, make_block

#: Stages of the latency breakdown, in the order they happen.
STAGES = ("device", "device->edge", "edge", "edge->cloud", "device->cloud", "cloud", "return")
#: Directed link usages reported in ``link_bytes``.
LINK_USES = ("device->edge", "edge->cloud", "device->cloud", "cloud->edge", "cloud->device",
             "edge->device", "edge<->edge")


@dataclass(frozen=True)
class TiledBlock:
    """Edge layers cut into ``k`` spatial tiles run by ``k`` edge nodes in parallel.

    >>> TiledBlock(("c1", "c2"), 2).k
    2
    """

    layers: tuple[str, ...]
    k: int

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "k", int(self.k))


@dataclass(frozen=True)
class SolveInfo:
    """How a plan was found.

    ``status`` is ``"optimal"`` (proven), ``"feasible"`` (a solution, not proven optimal),
    ``"timed_out"`` (time limit hit; best plan found), or ``"heuristic"`` (no bound sought).
    ``gap`` is the relative gap ``(objective - bound) / objective`` where a bound is known.
    """

    backend: str = ""
    status: str = "heuristic"
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    wall_time: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class Evaluation:
    """The scored latency of a plan.

    ``breakdown`` has one entry per stage in :data:`STAGES` (seconds); ``link_bytes`` the bytes
    per directed link use in :data:`LINK_USES`; ``memory`` the weight bytes each node holds;
    ``blocks`` the cost detail of each tiled block.
    """

    latency: float
    breakdown: Mapping[str, float]
    link_bytes: Mapping[str, int]
    memory: Mapping[str, int]
    blocks: tuple[BlockCost, ...] = ()

    @property
    def backbone_bytes(self) -> int:
        """Bytes over the edge<->cloud backbone, both directions."""
        return int(self.link_bytes["edge->cloud"] + self.link_bytes["cloud->edge"])


@dataclass(frozen=True)
class Plan:
    """Where every layer runs, which edge blocks are tiled, and (once scored) its latency.

    Solvers return plans scored by :func:`evaluate`; a hand-made plan has ``evaluation``
    None until passed through :func:`score`.

    >>> p = Plan({"x": "device", "f": "cloud"})
    >>> p.assignment["f"], p.layers_on("cloud")
    (<Tier.CLOUD: 2>, ('f',))
    """

    assignment: Mapping[str, Tier]
    tiles: tuple[TiledBlock, ...] = ()
    pins: Mapping[str, Tier] = field(default_factory=dict)
    method: str = ""
    info: SolveInfo | None = None
    evaluation: Evaluation | None = None

    def __post_init__(self):
        try:
            assignment = _parsed(self.assignment)
            pins = _parsed(self.pins)
        except Exception as err:  # ConfigError from Tier.parse
            raise PlanError(f"bad plan: {err}") from None
        object.__setattr__(self, "assignment", MappingProxyType(assignment))
        object.__setattr__(self, "pins", MappingProxyType(pins))
        object.__setattr__(self, "tiles", tuple(self.tiles))

    def _scored(self) -> Evaluation:
        if self.evaluation is None:
            raise PlanError("this plan has not been scored; use d3opt.evaluate or score()")
        return self.evaluation

    @property
    def latency(self) -> float:
        """End-to-end seconds of one inference under this plan."""
        return self._scored().latency

    @property
    def breakdown(self) -> Mapping[str, float]:
        """Seconds per stage (see :data:`STAGES`)."""
        return self._scored().breakdown

    @property
    def link_bytes(self) -> Mapping[str, int]:
        """Bytes per directed link use (see :data:`LINK_USES`)."""
        return self._scored().link_bytes

    @property
    def backbone_bytes(self) -> int:
        """Bytes over the edge<->cloud backbone."""
        return self._scored().backbone_bytes

    def layers_on(self, tier: "Tier | str") -> tuple[str, ...]:
        """Names of the layers assigned to ``tier`` (in the order of the assignment)."""
        tier = Tier.parse(tier)
        return tuple(n for n, t in self.assignment.items() if t == tier)

    def to_dict(self) -> dict:
        """A JSON-ready dict (tiers by name)."""
        data = {
            "method": self.method,
            "assignment": {k: v.name.lower() for k, v in self.assignment.items()},
            "tiles": [{"layers": list(t.layers), "k": t.k} for t in self.tiles],
            "pins": {k: v.name.lower() for k, v in self.pins.items()},
            "info": asdict(self.info) if self.info else None,
        }
        if self.evaluation is not None:
            ev = self.evaluation
            data.update(latency=ev.latency, breakdown=dict(ev.breakdown),
                        link_bytes=dict(ev.link_bytes), memory=dict(ev.memory))
        return data

    def to_json(self, **kwargs) -> str:
        """The plan as JSON text (see :meth:`from_json`)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        """Read a plan written by :meth:`to_json`; re-score it with :func:`score`.

        >>> p = Plan({"x": "device"}, tiles=[TiledBlock(("a",), 2)])
        >>> Plan.from_json(p.to_json()).tiles == p.tiles
        True
        """
        data = json.loads(text)
        info = SolveInfo(**data["info"]) if data.get("info") else None
        return cls(
            assignment=data["assignment"],
            tiles=tuple(TiledBlock(tuple(t["layers"]), t["k"]) for t in data.get("tiles", [])),
            pins=data.get("pins", {}),
            method=data.get("method", ""),
            info=info,
        )


def _parsed(tiers: Mapping) -> dict[str, Tier]:
    """``{layer: Tier}`` from any mapping of layer names to tiers (Tier, name or number)."""
    return {str(k): v if v.__class__ is Tier else Tier.parse(v) for k, v in tiers.items()}


def _tier_vector(graph: LayerGraph, assignment: Mapping[str, Tier]) -> np.ndarray:
    """The tiers of ``assignment`` in graph order; PlanError when layers are missing or
    unknown."""
    try:
        tiers = np.fromiter(map(assignment.__getitem__, graph.order), dtype=np.intp,
                            count=len(graph))
    except KeyError:
        missing = [n for n in graph.order if n not in assignment]
        raise PlanError(f"plan assigns no tier to layers {missing[:5]}"
                        f"{'...' if len(missing) > 5 else ''}") from None
    if len(assignment) != len(graph):
        unknown = sorted(set(assignment) - set(graph.order))
        raise PlanError(f"plan names layers not in the graph: {unknown[:5]}")
    return tiers


def _check_assignment(graph: LayerGraph, tiers: np.ndarray, pins: Mapping[str, Tier]) -> None:
    arrays, order = graph.arrays, graph.order
    off_device = np.flatnonzero(arrays.is_input & (tiers != Tier.DEVICE))
    if off_device.size:
        raise PlanError(f"input layer {order[off_device[0]]!r} must stay on the device")
    backwards = np.flatnonzero(tiers[arrays.src] > tiers[arrays.dst])
    if backwards.size:
        u, v = arrays.src[backwards[0]], arrays.dst[backwards[0]]
        raise PlanError(
            f"tiers go backwards along {order[u]!r} ({Tier(tiers[u]).name.lower()}) -> "
            f"{order[v]!r} ({Tier(tiers[v]).name.lower()})"
        )
    for name, tier in pins.items():
        if name not in graph:
            raise PlanError(f"pin names unknown layer {name!r}")
        here = Tier(tiers[graph.index[name]])
        if here != tier:
            raise PlanError(
                f"layer {name!r} is pinned to {tier.name.lower()} but runs on {here.name.lower()}"
            )


def _tiled_costs(cost: CostModel, assignment: Mapping[str, Tier],
                 tiles: Sequence[TiledBlock]) -> list[BlockCost]:
    seen: dict[str, int] = {}
    costs = []
    for i, tb in enumerate(tiles):
        block = make_block(cost.graph, tb.layers)
        for name in block.layers:
            if assignment[name] != Tier.EDGE:
                raise PlanError(f"tiled layer {name!r} must run on the edge tier")
            if name in seen:
                raise PlanError(f"layer {name!r} is in two tiled blocks ({seen[name]} and {i})")
            seen[name] = i
        if not 2 <= tb.k <= cost.nodes.K:
            raise PlanError(
                f"block ending at {block.exit!r}: tile count {tb.k} must be in 2..K={cost.nodes.K}"
            )
        costs.append(block_cost(cost, block, tb.k))
    return costs


def evaluate_assignment(cost: CostModel, assignment: Mapping[str, "Tier | str"],
                        tiles: Sequence[TiledBlock] = (), *,
                        pins: Mapping[str, "Tier | str"] | None = None) -> Evaluation:
    """Score an assignment with a prebuilt :class:`CostModel` (what solvers call).

    Raises
    ------
    PlanError
        When the plan breaks the model: a layer without tier, tiers going backwards, an
        input off the device, a pin or memory cap violated, an invalid tiled block.
    """
    graph, nodes, network = cost.graph, cost.nodes, cost.network
    assignment = _parsed(assignment)
    pins = _parsed(pins or {})
    tiers = _tier_vector(graph, assignment)
    _check_assignment(graph, tiers, pins)
    blocks = _tiled_costs(cost, assignment, tiles)

    arrays = graph.arrays
    free = np.ones(len(graph), dtype=bool)
    free[[graph.index[n] for bc in blocks for n in bc.block.layers]] = False
    compute = np.bincount(tiers[free], weights=cost.tier_times[free, tiers[free]], minlength=3)
    compute[Tier.EDGE] += sum(bc.time for bc in blocks)
    reads_on = np.zeros((len(graph), 3), dtype=bool)  # a consumer of layer i runs on tier t
    reads_on[arrays.src, tiers[arrays.dst]] = True
    crossing = {(a, b): int(arrays.out_bytes[(tiers == a) & reads_on[:, b]].sum())
                for a in Tier for b in Tier if a < b}
    returned = {t: int(arrays.out_bytes[arrays.is_sink & (tiers == t)].sum())
                for t in (Tier.EDGE, Tier.CLOUD)}

    direct = network.device_cloud is not None
    relayed = 0 if direct else crossing[Tier.DEVICE, Tier.CLOUD]
    relayed_back = 0 if direct else returned[Tier.CLOUD]
    link_bytes = {
        "device->edge": crossing[Tier.DEVICE, Tier.EDGE] + relayed,
        "edge->cloud": crossing[Tier.EDGE, Tier.CLOUD] + relayed,
        "device->cloud": crossing[Tier.DEVICE, Tier.CLOUD] if direct else 0,
        "cloud->edge": relayed_back,
        "cloud->device": returned[Tier.CLOUD] if direct else 0,
        "edge->device": returned[Tier.EDGE] + relayed_back,
        "edge<->edge": sum(bc.lan_bytes for bc in blocks),
    }
    de, ec, dc = network.device_edge, network.edge_cloud, network.device_cloud
    breakdown = {
        "device": compute[Tier.DEVICE],
        "device->edge": de.transfer_time(link_bytes["device->edge"]),
        "edge": compute[Tier.EDGE],
        "edge->cloud": ec.transfer_time(link_bytes["edge->cloud"]),
        "device->cloud": dc.transfer_time(link_bytes["device->cloud"]) if direct else 0.0,
        "cloud": compute[Tier.CLOUD],
        "return": ec.transfer_time(link_bytes["cloud->edge"])
        + (dc.transfer_time(link_bytes["cloud->device"]) if direct else 0.0)
        + de.transfer_time(link_bytes["edge->device"]),
    }
    memory = _memory(graph, nodes, tiers, blocks)
    for node in nodes.all:
        if node.memory is not None and memory[node.name] > node.memory:
            raise PlanError(
                f"node {node.name!r} would hold {memory[node.name]} bytes of weights; "
                f"its memory cap is {node.memory}"
            )
    latency = sum(breakdown[s] for s in STAGES)
    return Evaluation(
        latency=float(latency),
        breakdown=MappingProxyType({k: float(v) for k, v in breakdown.items()}),
        link_bytes=MappingProxyType({k: int(v) for k, v in link_bytes.items()}),
        memory=MappingProxyType(memory),
        blocks=tuple(blocks),
    )


def _memory(graph: LayerGraph, nodes: Nodes, tiers: np.ndarray,
            blocks: Sequence[BlockCost]) -> dict[str, int]:
    memory = {node.name: 0 for node in nodes.all}
    held = np.bincount(tiers, weights=graph.arrays.param_bytes, minlength=3)
    for tier in Tier:
        memory[nodes.tier_node(tier).name] += int(held[tier])
    for bc in blocks:
        weights = sum(graph[n].param_bytes for n in bc.block.layers)
        for node in bc.nodes[1:]:
            memory[node] += weights
    return memory


def evaluate(plan: Plan, graph: LayerGraph, nodes: Nodes, network: Network, *,
             pins: Mapping[str, "Tier | str"] | None = None) -> Evaluation:
    """Score ``plan`` on an instance: the latency model of DESIGN section 1.

    ``pins`` (layer -> tier) are checked together with the plan's own pins.
    """
    all_pins = dict(plan.pins)
    all_pins.update({k: Tier.parse(v) for k, v in (pins or {}).items()})
    return evaluate_assignment(CostModel(graph, nodes, network), plan.assignment, plan.tiles,
                               pins=all_pins)


def score(plan: Plan, cost: CostModel) -> Plan:
    """A copy of ``plan`` with its :class:`Evaluation` filled in.

    >>> from d3opt.graph import Layer, LayerGraph
    >>> from d3opt.system import Node, Nodes, Link, Network
    >>> g = LayerGraph([Layer("x", "input", out_bytes=8)], [])
    >>> nodes = Nodes(Node("d", flops=1.0), [Node("e", flops=1.0)], Node("c", flops=1.0))
    >>> cost = CostModel(g, nodes, Network(Link(1.0), Link(1.0), Link(1.0)))
    >>> score(Plan({"x": "device"}), cost).latency
    0.0
    """
    return replace(plan, evaluation=evaluate_assignment(cost, plan.assignment, plan.tiles,
                                                        pins=plan.pins))
