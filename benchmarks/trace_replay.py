"""Replay real (or synthetic) bandwidth traces through the incremental re-solver.

For each zoo model on a scenario, the device<->edge bandwidth follows each trace (HSDPA 3G
and FCC broadband traces from ../shared/data/traces when present; seeded synthetic
HSDPA-like traces otherwise). At every step it records, per strategy (``hpa``, ``milp``,
``auto``): re-solve wall time, latency regret against a cold MILP solve of the same
conditions, and plan changes; plus a static plan (optimal for the trace's mean bandwidth,
never changed) and the cold solve itself.

Usage::

    python benchmarks/trace_replay.py [--models resnet50,resnet18] [--scenario wifi] [--k 4]
        [--scale 10] [--traces hsdpa-bus,fcc-1] [--steps 120] [--hysteresis 0] [--budget S]
        [--out docs/trace_replay.csv]

The trace throughput is multiplied by ``--scale`` (default 10): at raw 3G rates (0.1-5
Mbit/s) the optimum of every shipped scenario runs the whole model on the device, so there
is nothing to adapt; x10 gives LTE-like rates with the HSDPA traces' shape.

Writes one CSV row per (model, trace, strategy) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import replace
from pathlib import Path

import d3opt
from d3opt import zoo
from d3opt.frontends.torch import from_torch
from d3opt.replay import replay
from d3opt.system import Nodes
from d3opt.traces import load_trace, synthetic_trace

from plots import plot_trace_replay, write_svg

TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
COLUMNS = ["model", "scenario", "K", "scale", "layers", "trace", "source", "steps", "strategy",
           "median_ms", "p99_ms", "mean_regret_pct", "max_regret_pct", "plan_changes",
           "mean_latency_ms", "mean_optimum_ms", "milp_solves", "median_solve_ms"]


def traces(names: list[str], *, steps: int):
    """``(trace, source)`` for each name: the shared file, or a synthetic stand-in."""
    for name in names:
        path = TRACES / f"{name}.tsv"
        if path.is_file():
            yield load_trace(path), "measured"
        else:
            fcc = name.startswith("fcc")
            yield synthetic_trace(seconds=steps * (5.0 if fcc else 1.0), step=5.0 if fcc else 1.0,
                                  mean_mbps=1.5 if fcc else 2.5, seed=sum(map(ord, name)),
                                  drop_rate=0.005 if fcc else 0.02,
                                  name=f"synthetic-{name}"), "synthetic"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,resnet18,mobilenet_v2")
    parser.add_argument("--scenario", default="wifi")
    parser.add_argument("--k", type=int, default=4,
                        help="edge nodes: the scenario's first edge node copied K times")
    parser.add_argument("--scale", type=float, default=10.0,
                        help="multiply trace throughput (3G traces x10 ~ LTE rates)")
    parser.add_argument("--traces", default="hsdpa-bus,hsdpa-train,fcc-1")
    parser.add_argument("--strategies", default="hpa,milp,auto")
    parser.add_argument("--steps", type=int, default=120, help="samples per trace")
    parser.add_argument("--hysteresis", type=float, default=0.0)
    parser.add_argument("--budget", type=float, default=None, help="MILP seconds per update")
    parser.add_argument("--out", default="docs/trace_replay.csv")
    args = parser.parse_args(argv)

    system = d3opt.scenario(args.scenario)
    base = system.nodes.edge[0]
    nodes = Nodes(system.nodes.device,
                  [replace(base, name=f"{base.name}{i}") for i in range(args.k)],
                  system.nodes.cloud)
    strategies = tuple(args.strategies.split(","))
    options = {"hysteresis": args.hysteresis}
    if args.budget is not None:
        options["budget"] = args.budget
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for model in args.models.split(","):
            graph = from_torch(zoo.get(model), zoo.example_input(model))
            for trace, source in traces(args.traces.split(","), steps=args.steps):
                start = time.perf_counter()
                result = replay(graph, nodes, system.network, trace.scaled(args.scale),
                                strategies=strategies, max_steps=args.steps, **options)
                print(f"# {model} on {trace.name}: {time.perf_counter() - start:.1f} s",
                      file=sys.stderr)
                for s in result.summaries():
                    row = {"model": model, "scenario": system.name, "K": nodes.K, "scale": args.scale,
                           "layers": len(graph), "trace": trace.name, "source": source,
                           "steps": s.steps, "strategy": s.strategy,
                           "median_ms": f"{1e3 * s.median_time:.3f}",
                           "p99_ms": f"{1e3 * s.p99_time:.3f}",
                           "mean_regret_pct": f"{100 * s.mean_regret:.4f}",
                           "max_regret_pct": f"{100 * s.max_regret:.4f}",
                           "plan_changes": s.plan_changes,
                           "mean_latency_ms": f"{1e3 * s.mean_latency:.4f}",
                           "mean_optimum_ms": f"{1e3 * float(result.optimum.mean()):.4f}",
                           "milp_solves": s.milp_solves,
                           "median_solve_ms": f"{1e3 * s.median_solve_time:.3f}"}
                    writer.writerow(row)
                    handle.flush()
                    rows.append(row)
    keys = ["model", "trace", "strategy", "median_ms", "p99_ms", "mean_regret_pct",
            "max_regret_pct", "plan_changes", "mean_latency_ms", "milp_solves",
            "median_solve_ms"]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    write_svg(plot_trace_replay, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
