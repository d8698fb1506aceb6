"""Lower bounds on the optimal latency, carried from earlier proofs to new link conditions.

Fix every condition but one number of one link ``l`` (``device_edge``, ``edge_cloud`` or
``device_cloud``): its seconds per byte ``theta = 1 / bandwidth``, or its per-message
latency ``theta = latency``. The latency of a fixed plan ``P`` is then affine in ``theta``,
``L_P(theta) = A_P + B_P * theta``, with ``B_P >= 0`` its bytes (or messages) on ``l``
(``evaluate`` sums ``latency + bytes / bandwidth`` per message, and a fixed plan sends fixed
messages). The optimum ``OPT(theta) = min_P L_P(theta)`` is a minimum of non-decreasing
affine functions, hence **concave and non-decreasing** in ``theta``. So lower bounds
``b_i <= OPT(theta_i)`` proven earlier (a MILP's dual bound) bound the optimum everywhere at
or above the smallest ``theta_i``: between two of them by their chord, above the largest by
its value. A plan whose latency reaches that bound is optimal without another solve.

The edge-edge link is left out: a tiled block's time is a maximum over its tiles, which is
not affine in that link's numbers. Node speeds are left out for the same reason (the
roofline's maximum).

Examples
--------
>>> from d3opt.graph import Layer, LayerGraph
>>> from d3opt.system import Node, Nodes, Link, Network
>>> from d3opt.cost import CostModel
>>> g = LayerGraph([Layer("x", "input", out_bytes=1000),
...                 Layer("f", "linear", flops=1e9, out_bytes=4)], [("x", "f")])
>>> nodes = Nodes(Node("d", flops=1e9), [Node("e", flops=1e10)], Node("c", flops=1e11))
>>> at = lambda bw: CostModel(g, nodes, Network(Link(bw), Link(1e9), Link(1e9)))
>>> bounds = ParametricBounds()
>>> bounds.record(at(1e3), 1.0)          # proven: OPT >= 1.0 s at 1 kB/s
>>> bounds.record(at(1e4), 0.2)          # and OPT >= 0.2 s at 10 kB/s
>>> round(bounds.lower(at(2e3)), 6)      # 2 kB/s lies between: the chord
0.555556
>>> bounds.lower(at(1e2)), bounds.lower(at(1e5))   # slower: the last value; faster: nothing
(1.0, None)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from d3opt.cost import CostModel

#: ``(link, number)`` pairs along which a plan's latency is affine.
PARAMETERS = tuple((link, number) for link in ("device_edge", "edge_cloud", "device_cloud")
                   for number in ("bandwidth", "latency"))


@dataclass(frozen=True)
class _Curve:
    """Proven bounds along one parameter, for one context (every other condition)."""

    context: tuple
    theta: np.ndarray  # ascending vertices of the bounds' concave hull
    bound: np.ndarray
    plans: tuple  # the plan recorded with each vertex (or None)


def _theta(cost: CostModel, link: str, number: str) -> float | None:
    value = getattr(cost.network, link)
    if value is None:
        return None
    return 1.0 / value.bandwidth if number == "bandwidth" else value.latency


def _context(cost: CostModel, link: str, number: str) -> tuple:
    """Every condition but ``number`` of ``link``: the nodes and the network with it blanked."""
    blank = replace(getattr(cost.network, link), **{number: 1.0})
    return cost.nodes, replace(cost.network, **{link: blank})


def _hull(theta: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """:func:`concave_hull` and the indices (into the inputs) of its vertices."""
    order = np.argsort(theta, kind="stable")
    theta, bound = np.asarray(theta, float)[order], np.asarray(bound, float)[order]
    bound = np.maximum.accumulate(bound)  # OPT is non-decreasing: a bound holds to its right
    keep: list[int] = []
    for i in range(len(theta)):
        if keep and theta[keep[-1]] == theta[i]:
            keep.pop()  # same theta: the running maximum is the better bound
        while len(keep) >= 2:
            a, b = keep[-2], keep[-1]
            # b lies on or under the chord from a to i: the chord bounds better.
            if ((bound[b] - bound[a]) * (theta[i] - theta[a])
                    <= (bound[i] - bound[a]) * (theta[b] - theta[a])):
                keep.pop()
            else:
                break
        keep.append(i)
    return theta[keep], bound[keep], [int(order[i]) for i in keep]


def concave_hull(theta: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least concave non-decreasing function above the points ``(theta_i, bound_i)``,
    as its vertices (``theta`` ascending).

    Every function that is concave, non-decreasing and at least ``bound_i`` at each
    ``theta_i`` is at least this one, which is what makes it a lower bound on the optimum.

    >>> t, b = concave_hull(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 0.2, 2.0, 1.0]))
    >>> t.tolist(), b.tolist()
    ([0.0, 2.0, 3.0], [0.0, 2.0, 2.0])
    """
    theta, bound, _ = _hull(theta, bound)
    return theta, bound


class ParametricBounds:
    """Proven lower bounds on the optimum of one model (graph, pins, solver options), kept
    along each affine parameter (:data:`PARAMETERS`) while every other condition stays put.

    :meth:`record` adds a bound proven under some conditions, with the plan found there;
    :meth:`lower` answers the best bound they imply under new conditions (``None`` when none
    applies) and :meth:`nearby` the recorded plans on either side, the natural candidates
    to reach it. A change of any other condition (a node's speed, the edge-edge link, a
    second link) starts that parameter's record afresh.
    """

    def __init__(self):
        self._curves: dict[tuple[str, str], _Curve] = {}

    def record(self, cost: CostModel, bound: float, plan=None) -> None:
        """Remember that the optimum under ``cost``'s conditions is at least ``bound``
        seconds (and that ``plan`` was found there)."""
        bound = float(bound)
        if not np.isfinite(bound):
            return
        for parameter in PARAMETERS:
            theta = _theta(cost, *parameter)
            if theta is None:
                self._curves.pop(parameter, None)
                continue
            context = _context(cost, *parameter)
            curve = self._curves.get(parameter)
            if curve is not None and curve.context == context:
                thetas, bounds = np.append(curve.theta, theta), np.append(curve.bound, bound)
                plans = (*curve.plans, plan)
            else:
                thetas, bounds, plans = np.array([theta]), np.array([bound]), (plan,)
            thetas, bounds, kept = _hull(thetas, bounds)
            self._curves[parameter] = _Curve(context, thetas, bounds,
                                             tuple(plans[i] for i in kept))

    def _applicable(self, cost: CostModel):
        for parameter, curve in self._curves.items():
            theta = _theta(cost, *parameter)
            if (theta is not None and theta >= curve.theta[0]
                    and curve.context == _context(cost, *parameter)):
                yield theta, curve

    def lower(self, cost: CostModel) -> float | None:
        """The best lower bound on the optimum under ``cost``'s conditions, or ``None``."""
        values = [float(np.interp(theta, curve.theta, curve.bound))
                  for theta, curve in self._applicable(cost)]
        return max(values) if values else None

    def nearby(self, cost: CostModel) -> list:
        """The plans recorded at the hull vertices on either side of ``cost``'s conditions
        (one side beyond the last vertex), without repeats."""
        plans = []
        for theta, curve in self._applicable(cost):
            right = int(np.searchsorted(curve.theta, theta))
            for i in {max(right - 1, 0), min(right, len(curve.theta) - 1)}:
                plan = curve.plans[i]
                if plan is not None and all(plan is not p for p in plans):
                    plans.append(plan)
        return plans


__all__ = ["ParametricBounds", "PARAMETERS", "concave_hull"]
