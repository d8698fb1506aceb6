"""The executor: run a plan with real torch tensors and prove the split output is right.

:func:`validate` cuts the model into the pieces a :class:`d3opt.Plan` describes (one per
tier, one per tiled block), runs them -- in this process, or one process per node over
``torch.distributed`` -- serialising every tensor that crosses a link, and reports the
output error against the unsplit model, the bytes each link carried next to the plan's
prediction, and the time of every stage.

Examples
--------
>>> import d3opt
>>> model, x = d3opt.zoo.get("tinycnn"), d3opt.zoo.example_input("tinycnn")
>>> g = d3opt.from_torch(model, x)
>>> s = d3opt.scenario("wifi")
>>> plan = d3opt.solve(g, s.nodes, s.network, method="edge")
>>> report = d3opt.validate(plan, model, x, graph=g, nodes=s.nodes, network=s.network)
>>> report.ok, report.max_abs_error <= 1e-5
(True, True)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch

from d3opt.errors import ConfigError
from d3opt.executor.distributed import ExecutionError
from d3opt.executor.job import Job, prepare
from d3opt.executor.pieces import export
from d3opt.executor.report import LinkTraffic, StageTime, ValidationReport
from d3opt.graph import LayerGraph
from d3opt.plan import LINK_USES, Plan
from d3opt.system import Network, Nodes

__all__ = ["validate", "Executor", "ValidationReport", "LinkTraffic", "StageTime", "ExecutionError"]

MODES = ("inprocess", "distributed")


class Executor:
    """A model exported once, ready to run and check any number of plans.

    Parameters
    ----------
    model, example_input : the module and its input (a tensor or a tuple of tensors). The
        model is never modified (a ``dtype`` cast happens on a copy).
    graph : the layer graph plans were made for (default: ``d3opt.from_torch``).
    nodes, network : the system plans were made for; needed to place tiles. Without them
        (untiled plans only) one edge node and no direct device-cloud link are assumed.
    dtype : run in this floating dtype (e.g. ``torch.float64``); byte predictions follow it.

    >>> import d3opt
    >>> model, x = d3opt.zoo.get("tinycnn"), d3opt.zoo.example_input("tinycnn")
    >>> runner = Executor(model, x)
    >>> plan = d3opt.Plan({n: "device" for n in runner.graph.order})
    >>> runner.validate(plan).ok
    True
    """

    def __init__(self, model: torch.nn.Module, example_input, *, graph: LayerGraph | None = None,
                 nodes: Nodes | None = None, network: Network | None = None,
                 dtype: torch.dtype | None = None):
        inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) \
            else (example_input,)
        if graph is None:
            from d3opt.frontends.torch import from_torch

            graph = from_torch(model, inputs[0] if len(inputs) == 1 else inputs)
        self.graph, self.nodes, self.network = graph, nodes, network
        self.expected, self.inputs, self.plain_time = _reference(model, inputs, dtype)
        self.dtype = dtype or next((t.dtype for t in self.inputs if t.is_floating_point()),
                                   torch.float32)
        self.program = export(model, inputs, dtype=dtype)

    def prepare(self, plan: Plan) -> Job:
        """The :class:`~d3opt.executor.job.Job` of ``plan``: its pieces, tiles and messages."""
        return prepare(plan, self.program, self.graph, nodes=self.nodes, network=self.network,
                       dtype=self.dtype)

    def validate(self, plan: Plan, *, mode: str = "inprocess", atol: float | None = None,
                 timeout: float = 120.0, address: str = "127.0.0.1", port: int = 0,
                 on_start: Callable[[dict[str, int]], None] | None = None) -> ValidationReport:
        """Run ``plan`` and check it; see :func:`validate` for the options."""
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; use one of {MODES}")
        job = self.prepare(plan)
        if mode == "inprocess":
            from d3opt.executor.inprocess import run_inprocess

            outputs, ledger = run_inprocess(job, self.inputs)
            traffic, stages, total = ledger.links, tuple(ledger.stages), None
        else:
            from d3opt.executor.distributed import run_distributed

            outputs, traffic, stages, total = run_distributed(
                job, self.inputs, timeout=timeout, address=address, port=port,
                on_start=on_start)
        error = max(float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
                    for a, b in zip(outputs, self.expected))
        if atol is None:
            atol = 1e-10 if self.dtype == torch.float64 else 1e-5
        links = tuple(
            LinkTraffic(link, int(job.predicted[link]), *traffic.get(link, (0, 0, 0)))
            for link in LINK_USES if job.predicted[link] or link in traffic
        )
        return ValidationReport(mode=mode, dtype=str(self.dtype).removeprefix("torch."),
                                tolerance=atol, max_abs_error=error, links=links,
                                stages=stages, plain_time=self.plain_time, total_time=total)


def _reference(model: torch.nn.Module, inputs: tuple, dtype: torch.dtype | None):
    if dtype is not None:
        model = copy.deepcopy(model).to(dtype)
        inputs = tuple(t.to(dtype) if t.is_floating_point() else t for t in inputs)
    with torch.inference_mode():
        model(*inputs)  # warm-up: the first call pays one-off allocation costs
        start = time.perf_counter()
        out = model(*inputs)
        elapsed = time.perf_counter() - start
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return tuple(outs), inputs, elapsed


def validate(plan: Plan, model: torch.nn.Module, example_input, *,
             graph: LayerGraph | None = None, nodes: Nodes | None = None,
             network: Network | None = None, mode: str = "inprocess",
             dtype: torch.dtype | None = None, atol: float | None = None,
             timeout: float = 120.0, address: str = "127.0.0.1", port: int = 0,
             on_start: Callable[[dict[str, int]], None] | None = None) -> ValidationReport:
    """Run ``plan`` on ``model`` and check it against the unsplit model.

    Parameters
    ----------
    plan : the plan to run (any solver's, or hand-made; tiled blocks included).
    model, example_input, graph, nodes, network, dtype : see :class:`Executor` (use it
        directly to check many plans of one model without exporting it again).
    mode : ``"inprocess"`` (default) or ``"distributed"`` (one process per node, gloo over
        TCP on ``address``; ``port=0`` picks a free one).
    atol : largest accepted abs error (default 1e-10 in float64, else 1e-5).
    timeout : seconds before a distributed run that does not finish is stopped.
    on_start : distributed mode only: called with ``{node name: pid}`` once every node
        process has started (monitoring, fault injection in tests).

    Returns
    -------
    ValidationReport
        ``report.ok`` and a readable ``str(report)``.

    Raises
    ------
    ExecutionError
        When a node process dies or does not answer within ``timeout``.
    """
    runner = Executor(model, example_input, graph=graph, nodes=nodes, network=network,
                      dtype=dtype)
    return runner.validate(plan, mode=mode, atol=atol, timeout=timeout, address=address,
                           port=port, on_start=on_start)
