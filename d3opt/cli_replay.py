"""``d3opt replay``: drive a link's bandwidth from a trace and compare re-solve strategies.

::

    d3opt replay --model resnet50 --trace hsdpa-bus.tsv --scenario 4g --strategy auto

A bare trace file name that is not an existing path is looked up in the reference traces
folder ``../shared/data/traces`` (relative to the working directory, then to the project).
The summary lists, per strategy, the median and 99th-percentile re-solve time, the mean and
largest latency regret against a cold MILP solve of each step, the plan changes and the mean
latency, beside a static plan (optimal for the trace's mean bandwidth) and the cold solve.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="d3opt")
>>> add_replay_parser(parser.add_subparsers())
>>> args = parser.parse_args(["replay", "--model", "resnet18", "--trace", "hsdpa-bus.tsv"])
>>> args.strategy, args.scenario, args.link, args.scale
('auto', 'wifi', 'device_edge', 1.0)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from d3opt.errors import ConfigError
from d3opt.solvers.incremental import STRATEGIES
from d3opt.system import LINKS

#: Where bare trace names are looked up, relative to the working directory and the project.
SHARED_TRACES = Path("..") / "shared" / "data" / "traces"


def resolve_trace_path(name: str) -> Path:
    """The trace file ``name``: an existing path, else a file of the reference traces folder.

    >>> resolve_trace_path("no-such-trace.tsv")
    Traceback (most recent call last):
    ...
    d3opt.errors.ConfigError: trace file 'no-such-trace.tsv' not found (not a path, and not in ../shared/data/traces)
    """
    path = Path(name)
    if path.is_file():
        return path
    if path.name == name:
        project = Path(__file__).resolve().parents[1]
        for folder in (SHARED_TRACES, project / SHARED_TRACES):
            for candidate in (folder / name, folder / f"{name}.tsv"):
                if candidate.is_file():
                    return candidate
    raise ConfigError(f"trace file {name!r} not found (not a path, and not in {SHARED_TRACES})")


def _run(args: argparse.Namespace) -> int:
    from d3opt.cli import load_instance
    from d3opt.replay import replay
    from d3opt.report import format_table
    from d3opt.traces import load_trace

    trace = load_trace(resolve_trace_path(args.trace))
    if args.scale != 1.0:
        trace = trace.scaled(args.scale)
    inst = load_instance(args)
    system = inst.scenario
    strategies = (args.strategy,) if args.strategy != "all" else ("hpa", "milp", "auto")
    options = {"hysteresis": args.hysteresis, "migration": args.migration}
    if args.budget is not None:
        options["budget"] = args.budget
    result = replay(inst.graph, system.nodes, system.network, trace, strategies=strategies,
                    link=args.link, max_steps=args.steps, pins=inst.pins, **options)
    print(f"{inst.label}: {len(inst.graph)} layers; scenario {system.name} "
          f"(K={system.nodes.K}); {args.link} bandwidth from trace {trace.name} "
          f"({len(result.optimum)} steps, mean {trace.mean_mbps:.3g} Mbit/s)\n")
    rows = [[s.strategy, f"{1e3 * s.median_time:.3f}", f"{1e3 * s.p99_time:.3f}",
             f"{100 * s.mean_regret:.3f}", f"{100 * s.max_regret:.3f}", s.plan_changes,
             f"{1e3 * s.mean_latency:.3f}", s.milp_solves] for s in result.summaries()]
    print(format_table(["strategy", "median ms", "p99 ms", "mean regret %", "max regret %",
                        "plan changes", "mean latency ms", "MILP solves"], rows))
    return 0


def add_replay_parser(subparsers) -> None:
    """``d3opt replay``: replay a bandwidth trace through the incremental re-solver."""
    parser = subparsers.add_parser(
        "replay", help="replay a bandwidth trace through the incremental re-solver",
        description="Drive a link's bandwidth from a trace file (time_seconds "
                    "throughput_Mbit_per_s) and compare re-solve strategies with a cold solve "
                    "and a static plan.")
    from d3opt.cli import add_instance_arguments

    add_instance_arguments(parser)
    parser.add_argument("--trace", required=True,
                        help="trace file, or a bare name from ../shared/data/traces")
    parser.add_argument("--strategy", default="auto", choices=[*STRATEGIES, "all"],
                        help="re-solve strategy (default: auto; 'all' runs each)")
    parser.add_argument("--link", default="device_edge", choices=list(LINKS),
                        help="link whose bandwidth follows the trace (default: device_edge)")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help="replay only the first N samples")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the trace's throughput (e.g. 10: 3G shape at LTE rates)")
    parser.add_argument("--budget", type=float, default=None, metavar="S",
                        help="MILP seconds per update (milp, auto)")
    parser.add_argument("--hysteresis", type=float, default=0.0,
                        help="switch only for a gain above this fraction (default 0)")
    parser.add_argument("--migration", type=float, default=0.0,
                        help="weight of the weight-migration time in the switching rule")
    parser.set_defaults(run=_run)
