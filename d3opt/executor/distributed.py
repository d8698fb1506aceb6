"""Placeholder replaced below."""
from d3opt.errors import D3optError


class ExecutionError(D3optError, RuntimeError):
    """A node process died, failed or did not answer in time."""
