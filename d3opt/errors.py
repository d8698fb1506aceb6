"""Errors raised by d3opt.

Every error is a :class:`D3optError`; the subclasses say which part rejected the input.
Messages name the layer, node or link at fault.

Examples
--------
>>> from d3opt.errors import GraphError, D3optError
>>> issubclass(GraphError, D3optError) and issubclass(GraphError, ValueError)
True
"""


class D3optError(Exception):
    """Base class of every error d3opt raises on purpose."""


class GraphError(D3optError, ValueError):
    """The layer graph is malformed: a cycle, a missing shape, a bad cost, an unknown op."""


class ConfigError(D3optError, ValueError):
    """The system description (nodes, links, scenario file) is malformed."""


class PlanError(D3optError, ValueError):
    """A plan breaks the system model: tiers go backwards, a pin or memory cap is violated."""


class InfeasibleError(D3optError):
    """No plan satisfies the constraints (pins, memory caps); the message names the family."""


class SolverError(D3optError, RuntimeError):
    """A solver backend failed or disagreed with :func:`d3opt.evaluate`."""
