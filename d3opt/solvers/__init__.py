"""Solvers: each turns a :class:`~d3opt.cost.CostModel` into a scored :class:`~d3opt.plan.Plan`.

A solver is a function ``fn(cost, *, pins, **options) -> Plan``; :func:`d3opt.solve` looks it
up by method name in :func:`methods`, imports its module only when used, and re-scores the
plan it returns with :func:`d3opt.plan.evaluate_assignment` (a mismatch raises).

>>> sorted(methods())[:4]
['brute', 'cloud', 'dads', 'device']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def methods() -> dict[str, str]:
    """Method name -> ``"module:function"`` of every solver d3opt ships."""
    return {
        "device": "d3opt.solvers.baselines:solve_device",
        "edge": "d3opt.solvers.baselines:solve_edge",
        "cloud": "d3opt.solvers.baselines:solve_cloud",
        "neurosurgeon": "d3opt.solvers.baselines:solve_neurosurgeon",
        "dads": "d3opt.solvers.baselines:solve_dads",
        "hpa": "d3opt.solvers.hpa:solve_hpa",
        "milp": "d3opt.solvers.milp:solve_milp",
        "brute": "d3opt.solvers.brute:solve_brute",
    }


def get_solver(method: str) -> Callable:
    """The solver function for ``method`` (ValueError naming the known methods otherwise)."""
    table = methods()
    if method not in table:
        raise ValueError(f"unknown method {method!r}; known methods: {sorted(table)}")
    module, function = table[method].split(":")
    return getattr(importlib.import_module(module), function)
