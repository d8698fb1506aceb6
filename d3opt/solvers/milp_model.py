"""The three-tier + tiles MILP as backend-neutral data (formulations/three_tier_tiles.md).

:class:`MilpFormulation` builds the model in named stages -- variables, then one method per
constraint family of the formulation document -- as plain arrays: variable bounds and
integrality, rows with bounds, and a sparse matrix. Numbers that depend on node speeds and
links (objective, dominance bounds of tile variables, tile memory rows, memory caps) are
computed separately by :meth:`MilpFormulation.coefficients`, so that a model built once can
be re-costed in place when the network or the load changes (see
:class:`d3opt.solvers.milp.MilpModel`). The solver backends in
:mod:`d3opt.solvers.milp_backends` turn the data into an OR-Tools MathOpt or PuLP model.

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> from d3opt.cost import CostModel
>>> g = LayerGraph([Layer("x", "input", out_bytes=1000), Layer("f", "linear", flops=4e9,
...                 out_bytes=4)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e12))
>>> form = MilpFormulation(CostModel(g, nodes, Network(Link(1e6), Link(1e8), Link(1e7))),
...                        pins={})
>>> form.num_variables, sorted(form.families)[:3]
(12, ['assignment', 'crossing', 'crossing_cut'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from d3opt.cost import CostModel
from d3opt.errors import ConfigError, InfeasibleError
from d3opt.plan import Plan, TiledBlock
from d3opt.system import Tier
from d3opt.tiling import BlockTimes, block_times, candidate_blocks, tiling_geometry

DEVICE, EDGE, CLOUD = int(Tier.DEVICE), int(Tier.EDGE), int(Tier.CLOUD)
#: Seconds per unit of the model's objective: coefficients are in microseconds, so that the
#: smallest transfer terms stay far above the backends' dual feasibility tolerance (~1e-7).
OBJECTIVE_UNIT = 1e-6
#: Tier pairs ``(s, d)`` a tensor can cross, ``s < d``.
TIER_PAIRS = ((DEVICE, EDGE), (DEVICE, CLOUD), (EDGE, CLOUD))
_TIER_LETTER = "dec"


@dataclass(frozen=True)
class Coefficients:
    """The cost-dependent numbers of a :class:`MilpFormulation`.

    ``objective`` (in units of :data:`OBJECTIVE_UNIT` seconds) and ``upper`` have one entry per variable; ``row_upper`` one per row;
    ``entries`` maps ``(row, column)`` to the matrix coefficients that depend on the cost
    model (weights a non-coordinator edge node holds when a block is tiled).
    """

    objective: np.ndarray
    upper: np.ndarray
    row_upper: np.ndarray
    entries: Mapping[tuple[int, int], float]


def pin_bounds(cost: CostModel, pins: Mapping[str, Tier]) -> tuple[dict[str, int], dict[str, int]]:
    """Lowest and highest tier each layer can take under monotonicity, inputs and pins.

    Raises
    ------
    InfeasibleError
        ``pins`` contradict each other along a path (a layer pinned above a later one).
    """
    graph = cost.graph
    low: dict[str, tuple[int, str | None]] = {}
    for name in graph.order:
        own = (int(pins[name]), name) if name in pins else (DEVICE, None)
        low[name] = max([own, *(low[p] for p in graph.preds(name))], key=lambda t: t[0])
    high: dict[str, tuple[int, str | None]] = {}
    for name in reversed(graph.order):
        if graph[name].op == "input":
            own = (DEVICE, name)
        else:
            own = (int(pins[name]), name) if name in pins else (CLOUD, None)
        high[name] = min([own, *(high[s] for s in graph.succs(name))], key=lambda t: t[0])
    for name in graph.order:
        (lo, why_lo), (hi, why_hi) = low[name], high[name]
        if lo > hi:
            raise InfeasibleError(
                f"pins: layer {why_lo!r} is pinned to the {Tier(lo).name.lower()} but "
                f"{why_hi!r}, which depends on it through {name!r}, must run on the "
                f"{Tier(hi).name.lower()} (tiers never go back along an edge)"
            )
    return ({n: low[n][0] for n in graph.order}, {n: high[n][0] for n in graph.order})


class MilpFormulation:
    """The MILP of one instance: variables, rows and matrix, family by family.

    Parameters
    ----------
    cost : the instance; its graph, edge-node count, which nodes have memory caps and whether
        a direct device-cloud link exists fix the structure.
    pins : ``{layer: Tier}`` layers fixed to a tier (by constraint, family ``pins``).
    tiles : add tile variables ``y[b,k]`` for candidate blocks (needs ``K >= 2``).
    max_segments : passed to :func:`d3opt.tiling.candidate_blocks`.

    Raises
    ------
    InfeasibleError
        When the pins contradict each other, or pinned layers alone exceed a memory cap.

    Attributes
    ----------
    names, lower, integer : per-variable name, lower bound and integrality.
    x, c, w, y : column of ``x[v,t]`` by ``(layer, t)``, of ``c[u,s,d]`` by ``(layer, s, d)``,
        of the message-used binary ``w[l]`` by link use name, of ``y[b,k]`` by
        ``(block index, k)``.
    row_names, row_family, row_lower, row_upper : per-row data (``row_upper`` of memory rows
        is refreshed by :meth:`coefficients`).
    entries : the structural matrix coefficients ``{(row, column): value}``.
    families : row indices of each constraint family.
    """

    def __init__(self, cost: CostModel, *, pins: Mapping[str, Tier], tiles: bool = True,
                 max_segments: int = 8):
        self.graph = cost.graph
        self.K = cost.nodes.K
        self.relay = cost.network.device_cloud is None
        self.pins = MappingProxyType({k: Tier.parse(v) for k, v in pins.items()})
        self.node_names = tuple(n.name for n in cost.nodes.all)
        self.capped = tuple(n.name for n in cost.nodes.all if n.memory is not None)
        self.names: list[str] = []
        self.lower: list[float] = []
        self.integer: list[bool] = []
        self.row_names: list[str] = []
        self.row_family: list[str] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.entries: dict[tuple[int, int], float] = {}
        self.families: dict[str, list[int]] = {}
        self.memory_rows: dict[str, int] = {}
        self.blocks = (
            candidate_blocks(self.graph, max_segments=max_segments)
            if tiles and self.K >= 2 else ()
        )
        self.low, self.high = pin_bounds(cost, self.pins)
        self.check_forced_memory(cost)
        self.geometry = tiling_geometry(self.graph, self.blocks)
        self._block_cache: tuple[tuple, BlockTimes] | None = None
        self._variables()
        self._assignment()
        self._inputs_on_device()
        self._pins()
        self._monotonicity()
        self._crossing()
        self._crossing_cut()
        self._message_used()
        self._tile_disjointness()
        self._memory()

    # -- bookkeeping --------------------------------------------------------------------
    @property
    def num_variables(self) -> int:
        """Number of columns."""
        return len(self.names)

    @property
    def num_constraints(self) -> int:
        """Number of rows."""
        return len(self.row_names)

    def structure_key(self, cost: CostModel) -> tuple:
        """What a cost model must share with this formulation to be re-costed in place."""
        return (cost.graph is self.graph, tuple(n.name for n in cost.nodes.all),
                cost.network.device_cloud is None,
                tuple(n.name for n in cost.nodes.all if n.memory is not None))

    def accepts(self, cost: CostModel) -> bool:
        """True when :meth:`coefficients` can re-cost this structure for ``cost``: same graph
        object, same node names, same direct-link presence, same capped nodes."""
        return self.structure_key(cost) == (True, self.node_names, self.relay, self.capped)

    def _column(self, name: str, *, integer: bool) -> int:
        self.names.append(name)
        self.lower.append(0.0)
        self.integer.append(integer)
        return len(self.names) - 1

    def _row(self, family: str, terms: Mapping[int, float], *, lower: float = -math.inf,
             upper: float = math.inf) -> int:
        row = len(self.row_names)
        members = self.families.setdefault(family, [])
        self.row_names.append(f"{family}_{len(members)}")
        self.row_family.append(family)
        self.row_lower.append(float(lower))
        self.row_upper.append(float(upper))
        members.append(row)
        for column, value in terms.items():
            if value:
                self.entries[row, column] = self.entries.get((row, column), 0.0) + float(value)
        return row

    def _above(self, name: str, t: int) -> dict[int, float]:
        """Terms of ``Z[v,t] = sum_{s >= t} x[v,s]`` (layer ``name`` runs on tier >= t)."""
        return {self.x[name, s]: 1.0 for s in range(t, 3)}

    def check_forced_memory(self, cost: CostModel) -> None:
        """Raise :class:`InfeasibleError` when layers forced onto a tier by pins exceed its
        node's memory cap."""
        for tier in (DEVICE, EDGE, CLOUD):
            node = cost.nodes.tier_node(Tier(tier))
            if node.memory is None:
                continue
            forced = sum(self.graph[n].param_bytes for n in self.graph.order
                         if self.low[n] == self.high[n] == tier)
            if forced > node.memory:
                raise InfeasibleError(
                    f"memory caps: layers pinned to the {Tier(tier).name.lower()} need "
                    f"{forced} bytes of weights on node {node.name!r}, whose cap is {node.memory}"
                )

    # -- variables ----------------------------------------------------------------------
    def _variables(self) -> None:
        graph, index = self.graph, self.graph.index
        self.x = {(v, t): self._column(f"x_{index[v]}_{_TIER_LETTER[t]}", integer=True)
                  for v in graph.order for t in (DEVICE, EDGE, CLOUD)}
        self.sent = tuple(u for u in graph.order if graph.succs(u) and graph[u].out_bytes > 0)
        self.c = {}
        for u in self.sent:
            for s, d in TIER_PAIRS:
                if self.low[u] <= s <= self.high[u] and d <= max(self.high[v] for v in graph.succs(u)):
                    self.c[u, s, d] = self._column(
                        f"c_{index[u]}_{_TIER_LETTER[s]}{_TIER_LETTER[d]}", integer=False)
        self.returned = tuple(v for v in graph.outputs if graph[v].out_bytes > 0)
        uses = ["device->edge", "edge->cloud", "edge->device"]
        uses += ["cloud->edge"] if self.relay else ["device->cloud", "cloud->device"]
        self.w = {use: self._column("w_" + use.replace("->", "_"), integer=True) for use in uses}
        self.y = {}
        for b, block in enumerate(self.blocks):
            height = graph[block.exit].out_shape[2]
            if any(self.high[v] < EDGE or self.low[v] > EDGE for v in block.layers):
                continue
            for k in range(2, min(self.K, height) + 1):
                self.y[b, k] = self._column(f"y_{b}_{k}", integer=True)

    # -- constraint families --------------------------------------------------------------
    def _assignment(self) -> None:
        """Every layer runs on exactly one tier."""
        for v in self.graph.order:
            self._row("assignment", {self.x[v, t]: 1.0 for t in range(3)}, lower=1, upper=1)

    def _inputs_on_device(self) -> None:
        """Model inputs are produced on the device."""
        for v in self.graph.inputs:
            self._row("inputs", {self.x[v, DEVICE]: 1.0}, lower=1, upper=1)

    def _pins(self) -> None:
        """Pinned layers run on their tier (a row, not a bound: PuLP resets binary bounds)."""
        for v, tier in self.pins.items():
            self._row("pins", {self.x[v, int(tier)]: 1.0}, lower=1, upper=1)

    def _monotonicity(self) -> None:
        """Along every edge ``u -> v``: ``Z[u,t] <= Z[v,t]`` for ``t`` in edge, cloud."""
        for u, v in self.graph.edges:
            for t in (EDGE, CLOUD):
                terms = self._above(u, t)
                for column, value in self._above(v, t).items():
                    terms[column] = terms.get(column, 0.0) - value
                self._row("monotonicity", terms, upper=0)

    def _crossing(self) -> None:
        """``c[u,s,d] >= x[u,s] + x[v,d] - 1`` for every consumer ``v`` of tensor ``u``."""
        for u in self.sent:
            for s, d in TIER_PAIRS:
                if (u, s, d) not in self.c:
                    continue
                for v in self.graph.succs(u):
                    if self.high[v] < d or self.low[v] > d:
                        continue
                    self._row("crossing", {self.c[u, s, d]: 1.0, self.x[u, s]: -1.0,
                                           self.x[v, d]: -1.0}, lower=-1)

    def _crossing_cut(self) -> None:
        """Cut inequalities: ``c[u,d,e] + c[u,d,c] >= Z[v,e] - Z[u,e]`` and
        ``c[u,d,c] + c[u,e,c] >= x[v,c] - x[u,c]`` (valid, tighten the LP relaxation)."""
        for u in self.sent:
            for v in self.graph.succs(u):
                for t, pairs in ((EDGE, ((DEVICE, EDGE), (DEVICE, CLOUD))),
                                 (CLOUD, ((DEVICE, CLOUD), (EDGE, CLOUD)))):
                    if self.high[v] < t or self.low[u] >= t:
                        continue
                    terms = {self.c[u, s, d]: 1.0 for s, d in pairs if (u, s, d) in self.c}
                    for column in self._above(v, t):
                        terms[column] = terms.get(column, 0.0) - 1.0
                    for column in self._above(u, t):
                        terms[column] = terms.get(column, 0.0) + 1.0
                    self._row("crossing_cut", terms, lower=0)

    def _message_used(self) -> None:
        """``w[l] >= `` each crossing or returned tensor that travels on link use ``l``."""
        relay = self.relay
        for u in self.sent:
            routes = {(DEVICE, EDGE): ["device->edge"], (EDGE, CLOUD): ["edge->cloud"],
                      (DEVICE, CLOUD): ["device->edge", "edge->cloud"] if relay
                      else ["device->cloud"]}
            for (s, d), uses in routes.items():
                if (u, s, d) in self.c:
                    for use in uses:
                        self._row("message", {self.w[use]: 1.0, self.c[u, s, d]: -1.0}, lower=0)
        for v in self.returned:
            routes = {EDGE: ["edge->device"],
                      CLOUD: ["cloud->edge", "edge->device"] if relay else ["cloud->device"]}
            for t, uses in routes.items():
                if self.high[v] >= t:
                    for use in uses:
                        self._row("message", {self.w[use]: 1.0, self.x[v, t]: -1.0}, lower=0)

    def _tile_disjointness(self) -> None:
        """``sum_{b ∋ v, k} y[b,k] <= x[v,edge]``: a layer is in at most one tiled block,
        and only on the edge."""
        covering: dict[str, list[int]] = {}
        for (b, k), column in self.y.items():
            for v in self.blocks[b].layers:
                covering.setdefault(v, []).append(column)
        for v in self.graph.order:
            if v in covering:
                terms = {column: 1.0 for column in covering[v]}
                terms[self.x[v, EDGE]] = -1.0
                self._row("tile_disjointness", terms, upper=0)

    def _memory(self) -> None:
        """Weights held per capped node: the tier's layers for the device, the coordinator
        and the cloud; tiled blocks for the other edge nodes (caps and tile terms are set by
        :meth:`coefficients`)."""
        graph = self.graph
        tier_of = {0: DEVICE, 1: EDGE, self.K + 1: CLOUD}
        for j, name in enumerate(self.node_names):
            if name not in self.capped:
                continue
            terms = {}
            if j in tier_of:
                terms = {self.x[v, tier_of[j]]: float(graph[v].param_bytes) for v in graph.order}
            self.memory_rows[name] = self._row("memory", terms)

    # -- numbers --------------------------------------------------------------------------
    def block_times(self, cost: CostModel) -> BlockTimes:
        """:func:`d3opt.tiling.block_times` of every candidate block, cached while edge-node
        times, the edge-edge link and the LAN mode stay the same."""
        key = (cost.times[:, 1:1 + self.K].tobytes(), cost.network.edge_edge, cost.network.lan)
        if self._block_cache is None or self._block_cache[0] != key:
            self._block_cache = (key, block_times(cost, self.geometry))
        return self._block_cache[1]

    def coefficients(self, cost: CostModel) -> Coefficients:
        """Objective, bounds and cost-dependent matrix entries for ``cost``.

        Raises
        ------
        ConfigError
            When ``cost`` does not share this formulation's structure (see :meth:`accepts`).
        """
        if not self.accepts(cost):
            raise ConfigError("the cost model changes the MILP's structure; build a new one")
        graph, network = self.graph, cost.network
        de, ec, dc = network.device_edge, network.edge_cloud, network.device_cloud
        objective = np.zeros(self.num_variables)
        tier_times = cost.tier_times
        for i, v in enumerate(graph.order):
            for t in range(3):
                objective[self.x[v, t]] = tier_times[i, t]
        per_byte = {(DEVICE, EDGE): 1 / de.bandwidth, (EDGE, CLOUD): 1 / ec.bandwidth,
                    (DEVICE, CLOUD): 1 / de.bandwidth + 1 / ec.bandwidth if self.relay
                    else 1 / dc.bandwidth}
        for (u, s, d), column in self.c.items():
            objective[column] = graph[u].out_bytes * per_byte[s, d]
        back = {EDGE: 1 / de.bandwidth,
                CLOUD: 1 / ec.bandwidth + 1 / de.bandwidth if self.relay else 1 / dc.bandwidth}
        for v in self.returned:
            for t in (EDGE, CLOUD):
                objective[self.x[v, t]] += graph[v].out_bytes * back[t]
        latency = {"device->edge": de.latency, "edge->device": de.latency,
                   "edge->cloud": ec.latency, "cloud->edge": ec.latency,
                   "device->cloud": dc.latency if dc else 0.0,
                   "cloud->device": dc.latency if dc else 0.0}
        for use, column in self.w.items():
            objective[column] = latency[use]
        upper = np.ones(self.num_variables)
        timed = self.block_times(cost)
        best: dict[int, float] = {}
        for (b, k), column in sorted(self.y.items()):
            objective[column] = timed.time[b, k - 1] - timed.time[b, 0]
            # y[b,k] is dominated when no better than untiled or a smaller k (same nodes
            # and fewer): fixing it to 0 keeps the optimum and every memory cap.
            if objective[column] < min(best.get(b, 0.0), 0.0):
                best[b] = objective[column]
            else:
                upper[column] = 0.0
        row_upper = np.array(self.row_upper, dtype=float)
        entries: dict[tuple[int, int], float] = {}
        for name, row in self.memory_rows.items():
            row_upper[row] = float(cost.nodes[name].memory)
            j = self.node_names.index(name)
            if 2 <= j <= self.K:
                for (b, k), column in self.y.items():
                    weights = float(self.geometry.params[b])
                    if weights and j - 1 in timed.members[b, 1:k]:
                        entries[row, column] = weights
        return Coefficients(objective=objective / OBJECTIVE_UNIT, upper=upper, row_upper=row_upper,
                            entries=MappingProxyType(entries))

    # -- plans <-> values ---------------------------------------------------------------------
    def decode(self, values: np.ndarray) -> tuple[dict[str, Tier], tuple[TiledBlock, ...]]:
        """Assignment and tiled blocks of a solution vector (rounded)."""
        assignment = {v: Tier(int(np.argmax([values[self.x[v, t]] for t in range(3)])))
                      for v in self.graph.order}
        tiles = tuple(TiledBlock(self.blocks[b].layers, k)
                      for (b, k), column in sorted(self.y.items()) if values[column] > 0.5)
        return assignment, tiles

    def encode(self, plan: Plan, coefficients: Coefficients) -> np.ndarray:
        """A full solution vector for ``plan`` (a hint): crossings and messages follow from
        the assignment; a tiled block that is not a tile variable, or is dominated, is
        replaced by the best allowed smaller tile count (or left untiled)."""
        graph = self.graph
        tier = {v: int(Tier.parse(plan.assignment.get(v, Tier.DEVICE))) for v in graph.order}
        values = np.zeros(self.num_variables)
        for v in graph.order:
            values[self.x[v, tier[v]]] = 1.0
        for (u, s, d), column in self.c.items():
            if tier[u] == s and any(tier[v] == d for v in graph.succs(u)):
                values[column] = 1.0
        for (u, s, d), column in self.c.items():
            if values[column]:
                for use, route in (("device->edge", (s == DEVICE and (d == EDGE or self.relay))),
                                   ("edge->cloud", (d == CLOUD and (s == EDGE or self.relay))),
                                   ("device->cloud", (s, d) == (DEVICE, CLOUD) and not self.relay)):
                    if route:
                        values[self.w[use]] = 1.0
        for v in self.returned:
            if tier[v] == EDGE:
                values[self.w["edge->device"]] = 1.0
            elif tier[v] == CLOUD:
                for use in (("cloud->edge", "edge->device") if self.relay else ("cloud->device",)):
                    values[self.w[use]] = 1.0
        by_layers = {frozenset(block.layers): b for b, block in enumerate(self.blocks)}
        for tb in plan.tiles:
            b = by_layers.get(frozenset(tb.layers))
            allowed = [(coefficients.objective[self.y[b, k]], k) for k in range(2, tb.k + 1)
                       if (b, k) in self.y and coefficients.upper[self.y[b, k]] > 0]
            if b is not None and allowed:
                values[self.y[b, min(allowed)[1]]] = 1.0
        return values
