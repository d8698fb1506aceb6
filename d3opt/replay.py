"""Replay a bandwidth trace through :class:`~d3opt.solvers.incremental.Resolver` strategies.

At every sample of the trace one link (by default ``device_edge``) takes the sample's
bandwidth; each strategy's Resolver re-solves, a cold MILP solve gives the optimum of those
conditions, and a *static* plan -- the optimum for the trace's mean bandwidth, never changed --
is scored alongside. Regret is ``(latency - optimum) / optimum`` with the plain
:func:`d3opt.evaluate` latency (migration costs never enter it).

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> from d3opt.traces import Trace
>>> g = LayerGraph([Layer("x", "input", out_bytes=1_000_000),
...                 Layer("f", "linear", flops=1e10, out_bytes=4)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e11)], Node("c", flops=1e12))
>>> net = Network(Link(1e8), Link(1e9), Link(1e6, 0.2))
>>> result = replay(g, nodes, net, Trace([0.0, 1.0, 2.0], [1e8, 1e5, 1e8]),
...                 strategies=("hpa",))
>>> [s.strategy for s in result.summaries()]
['hpa', 'static', 'cold']
>>> result.summary("hpa").plan_changes, result.summary("hpa").mean_regret
(2, 0.0)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from d3opt.cost import CostModel
from d3opt.errors import ConfigError
from d3opt.graph import LayerGraph
from d3opt.plan import score
from d3opt.solve import solve_cost
from d3opt.solvers.incremental import Resolver
from d3opt.system import LINKS, Link, Network, Nodes, Tier
from d3opt.traces import Trace


@dataclass(frozen=True)
class Summary:
    """One strategy over one replay (times in seconds, regrets as fractions).

    ``milp_solves`` counts the re-solves that ran the MILP (the others were answered by HPA's
    adjustment or by a parametric certificate, :mod:`d3opt.solvers.parametric`);
    ``median_solve_time`` is the median time of those re-solves (NaN when there were none).
    """

    strategy: str
    steps: int
    median_time: float
    p99_time: float
    mean_regret: float
    max_regret: float
    plan_changes: int
    mean_latency: float
    milp_solves: int
    median_solve_time: float


@dataclass(frozen=True, eq=False)
class Replay:
    """Per-step records of a replay: ``latency[s]``, ``wall[s]``, ``switched[s]`` and
    ``solved[s]`` (the re-solve ran the MILP) arrays per strategy ``s`` (``"static"`` and
    ``"cold"`` included), ``optimum`` the cold optimum and ``bandwidth`` the link bandwidth
    at each step."""

    trace: str
    link: str
    times: np.ndarray
    bandwidth: np.ndarray
    optimum: np.ndarray
    latency: Mapping[str, np.ndarray]
    wall: Mapping[str, np.ndarray]
    switched: Mapping[str, np.ndarray]
    solved: Mapping[str, np.ndarray]

    def summary(self, strategy: str) -> Summary:
        """The :class:`Summary` of ``strategy``."""
        latency, wall = self.latency[strategy], self.wall[strategy]
        regret = (latency - self.optimum) / self.optimum
        solved = self.solved[strategy]
        return Summary(
            strategy=strategy, steps=len(latency),
            median_time=float(statistics.median(wall)),
            p99_time=float(np.percentile(wall, 99)),
            mean_regret=max(0.0, float(np.mean(regret))), max_regret=max(0.0, float(regret.max())),
            plan_changes=int(np.sum(self.switched[strategy])),
            mean_latency=float(np.mean(latency)), milp_solves=int(solved.sum()),
            median_solve_time=float(np.median(wall[solved])) if solved.any() else float("nan"))

    def summaries(self) -> list[Summary]:
        """Every strategy's summary, in the order they ran, then static and cold."""
        return [self.summary(s) for s in self.latency]


def replay(graph: LayerGraph, nodes: Nodes, network: Network, trace: Trace, *,
           strategies: Sequence[str] = ("hpa", "milp", "auto"), link: str = "device_edge",
           floor: float = 1250.0, max_steps: int | None = None,
           pins: Mapping[str, "Tier | str"] | None = None,
           progress: Callable[[int, int], None] | None = None, **resolver_options) -> Replay:
    """Drive ``link``'s bandwidth from ``trace`` and record every strategy at every step.

    Parameters
    ----------
    graph, nodes, network : the instance; the trace replaces ``link``'s bandwidth (its
        latency is kept).
    trace : bandwidth samples in bytes/s (see :mod:`d3opt.traces`).
    strategies : Resolver strategies to replay.
    floor : lowest bandwidth used (bytes/s; default 10 kbit/s): trace outages are clipped to it.
    max_steps : replay at most this many samples (None: all).
    pins : ``{layer: tier}`` for every plan.
    progress : called with ``(step, steps)`` after each step.
    resolver_options : passed to each :class:`Resolver` (``budget=``, ``hysteresis=``, ...).

    Returns
    -------
    Replay
        Step records; :meth:`Replay.summaries` gives the table.
    """
    if link not in LINKS or getattr(network, link) is None:
        raise ConfigError(f"cannot replay link {link!r}: the network has no such link")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {max_steps!r}")
    clipped = trace.clip(low=floor)
    count = len(clipped) if max_steps is None else min(len(clipped), int(max_steps))
    bandwidth = clipped.bandwidth[:count]
    latency_of = getattr(network, link).latency

    def network_at(bytes_per_s: float) -> Network:
        return network.with_link(link, Link(float(bytes_per_s), latency_of))

    static_cost = CostModel(graph, nodes, network_at(float(np.mean(bandwidth))))
    static = solve_cost(static_cost, "milp", pins=pins)
    start_net = network_at(bandwidth[0])
    resolvers = {s: Resolver(graph, nodes, start_net, strategy=s, pins=pins, **resolver_options)
                 for s in strategies}
    names = [*strategies, "static", "cold"]
    latency = {s: np.zeros(count) for s in names}
    wall = {s: np.zeros(count) for s in names}
    switched = {s: np.zeros(count, dtype=bool) for s in names}
    solved = {s: np.zeros(count, dtype=bool) for s in names}
    optimum = np.zeros(count)
    previous = None
    for i, value in enumerate(bandwidth):
        current = network_at(value)
        t0 = time.perf_counter()
        cost = CostModel(graph, nodes, current)
        best = solve_cost(cost, "milp", pins=pins)
        wall["cold"][i] = time.perf_counter() - t0
        solved["cold"][i] = True
        optimum[i] = latency["cold"][i] = best.latency
        switched["cold"][i] = previous is not None and (
            best.assignment != previous.assignment or best.tiles != previous.tiles)
        previous = best
        latency["static"][i] = score(static, cost).latency
        for s, resolver in resolvers.items():
            if i == 0:
                latency[s][i] = resolver.plan.latency
                continue
            update = resolver.set_bandwidth(link, value)
            latency[s][i], wall[s][i], switched[s][i] = (update.latency, update.wall_time,
                                                         update.switched)
            solved[s][i] = any(step.strategy == "milp" for step in update.steps)
        if progress is not None:
            progress(i + 1, count)
    for s in strategies:
        # Step 0 is the cold start every Resolver shares: not a re-solve.
        wall[s] = wall[s][1:] if count > 1 else wall[s]
        solved[s] = solved[s][1:] if count > 1 else solved[s]
    return Replay(trace=trace.name, link=link, times=clipped.times[:count], bandwidth=bandwidth,
                  optimum=optimum, latency=latency, wall=wall, switched=switched,
                  solved=solved)


__all__ = ["Replay", "Summary", "replay"]
