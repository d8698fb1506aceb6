"""How close D3's heuristic (HPA) comes to the MILP optimum, and what both gain.

For every zoo model x shipped scenario x K in {1, 2, 4} (the scenario's first edge node
copied K times) it runs every method through :func:`d3opt.compare.compare` and records:
latency of each method; the HPA/MILP gap; the speed-up of the MILP and of HPA over the best
two-tier baseline (the better of DADS and Neurosurgeon); the reduction of cloud-bound bytes
(every byte to or from the cloud, backbone and direct link) against running everything in the
cloud; HPA's median solve time (warm: layout reused; and cold: first solve on the graph); and
the ratio of a full HPA run to a partial adjustment after the device-edge bandwidth halves,
against a full run that reuses the layout (``full_over_adjust``, the strict comparison) and
one that builds it, as ``d3opt.solve(..., method="hpa")`` does (``cold_over_adjust``).

Usage::

    python benchmarks/gap.py [--out docs/gap.csv] [--time-limit 60] [--models a,b]
        [--scenarios wifi,wired] [--ks 1,2,4] [--repeats 7] [--synthetic 300,1000]

``--synthetic`` adds the seeded synthetic DAGs of ``benchmarks/solver_scaling.py`` of those
sizes (``--models ""`` runs them alone), to see how a full solve and an adjustment scale.

Prints one line per instance and a summary; writes the CSV as it goes.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from dataclasses import replace
from pathlib import Path

import d3opt
from d3opt import zoo
from d3opt.compare import DEFAULT_METHODS, compare
from d3opt.cost import CostModel
from d3opt.frontends.torch import from_torch
from d3opt.solvers.hpa import adjust, build_layout, solve_hpa
from d3opt.system import Link, Nodes, builtin_scenarios, scenario

from plots import plot_gap, write_svg
from solver_scaling import synthetic_graph

COLUMNS = ["model", "scenario", "K", "layers", *(f"{m}_ms" for m in DEFAULT_METHODS),
           "milp_status", "hpa_gap_pct", "milp_speedup_vs_2tier", "hpa_speedup_vs_2tier",
           "hpa_cloud_bytes_reduction", "milp_cloud_bytes_reduction", "hpa_tiles",
           "hpa_solve_ms_median", "hpa_solve_ms_cold", "adjust_ms_median",
           "full_over_adjust", "cold_over_adjust"]


def with_k(nodes: Nodes, k: int) -> Nodes:
    """``nodes`` with its first edge node copied ``k`` times."""
    base = nodes.edge[0]
    return Nodes(nodes.device, [replace(base, name=f"{base.name}#{i}") for i in range(k)],
                 nodes.cloud)


def cloud_bytes(row) -> int:
    lb = row.plan.link_bytes
    return lb["edge->cloud"] + lb["cloud->edge"] + lb["device->cloud"] + lb["cloud->device"]


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def run_one(graph, name: str, scen, k: int, *, time_limit: float, repeats: int) -> dict:
    nodes, network = with_k(scen.nodes, k), scen.network
    result = compare(graph, nodes, network, time_limit=time_limit)
    row = {"model": name, "scenario": scen.name, "K": k, "layers": len(graph)}
    for r in result.rows:
        row[f"{r.method}_ms"] = "" if r.latency is None else f"{r.latency * 1e3:.4f}"
    hpa, milp, cloud = result.row("hpa"), result.row("milp"), result.row("cloud")
    two = [r.latency for r in (result.row("dads"), result.row("neurosurgeon")) if r.latency]
    row["milp_status"] = result.milp_status or milp.error[:40]
    row["hpa_gap_pct"] = "" if hpa.gap is None else f"{100 * hpa.gap:.4f}"
    for label, r in (("milp", milp), ("hpa", hpa)):
        row[f"{label}_speedup_vs_2tier"] = (f"{min(two) / r.latency:.4f}"
                                            if r.latency and two else "")
        mine = cloud_bytes(r) if r.plan is not None else None
        row[f"{label}_cloud_bytes_reduction"] = (
            "" if mine is None or cloud.plan is None else
            "inf" if mine == 0 else f"{cloud_bytes(cloud) / mine:.4f}")
    row["hpa_tiles"] = ";".join(f"{len(t.layers)}x{t.k}" for t in hpa.plan.tiles)

    cost = CostModel(graph, nodes, network)
    start = time.perf_counter()
    lay = build_layout(graph)
    solve_hpa(cost, pins={}, layout=lay)
    row["hpa_solve_ms_cold"] = f"{1e3 * (time.perf_counter() - start):.3f}"
    row["hpa_solve_ms_median"] = f"{median_ms(lambda: solve_hpa(cost, pins={}, layout=lay), repeats):.3f}"
    plan = solve_hpa(cost, pins={}, layout=lay)
    de = network.device_edge
    changed = CostModel(graph, nodes, network.with_link(
        "device_edge", Link(de.bandwidth / 2, de.latency)))
    full = median_ms(lambda: solve_hpa(changed, pins={}, layout=lay), repeats)
    cold = median_ms(lambda: solve_hpa(changed, pins={}), repeats)
    part = median_ms(lambda: adjust(plan, changed, layout=lay), repeats)
    row["adjust_ms_median"] = f"{part:.3f}"
    row["full_over_adjust"] = f"{full / part:.2f}"
    row["cold_over_adjust"] = f"{cold / part:.2f}"
    return row


def summary(rows: list[dict]) -> str:
    gaps = [float(r["hpa_gap_pct"]) for r in rows
            if r["hpa_gap_pct"] != "" and r["milp_status"] == "optimal"]
    solve = [float(r["hpa_solve_ms_median"]) for r in rows]
    ratio = [float(r["full_over_adjust"]) for r in rows]
    cold = [float(r["cold_over_adjust"]) for r in rows]
    lines = [f"instances: {len(rows)}; with a proven MILP optimum: {len(gaps)}"]
    if gaps:
        lines.append(f"HPA gap to the optimum: mean {statistics.mean(gaps):.3f} %, "
                     f"worst {max(gaps):.3f} %, exact on {sum(g < 1e-6 for g in gaps)}")
    for label in ("milp", "hpa"):
        sp = [float(r[f"{label}_speedup_vs_2tier"]) for r in rows if r[f"{label}_speedup_vs_2tier"]]
        if sp:
            lines.append(f"{label} speed-up over the best two-tier baseline: mean "
                         f"{statistics.mean(sp):.3f}x, max {max(sp):.3f}x")
    lines.append(f"HPA solve time (warm median per instance): median "
                 f"{statistics.median(solve):.2f} ms, max {max(solve):.2f} ms")
    lines.append(f"full HPA (layout reused) / adjust time: median "
                 f"{statistics.median(ratio):.1f}x, min {min(ratio):.1f}x, "
                 f"at least 10x on {sum(x >= 10 for x in ratio)} of {len(ratio)}")
    lines.append(f"full HPA (layout built, as solve() runs it) / adjust time: median "
                 f"{statistics.median(cold):.1f}x, min {min(cold):.1f}x")
    r50 = [float(r["hpa_solve_ms_median"]) for r in rows if r["model"] == "resnet50"]
    if r50:
        lines.append(f"HPA solve time on resnet50: median {statistics.median(r50):.2f} ms, "
                     f"max {max(r50):.2f} ms")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent.parent / "docs" / "gap.csv"))
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--models", default=",".join(zoo.names()))
    parser.add_argument("--scenarios", default=",".join(builtin_scenarios()))
    parser.add_argument("--ks", default="1,2,4")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--synthetic", default="", help="sizes of synthetic DAGs to add")
    args = parser.parse_args(argv)
    graphs = [(name, lambda name=name: from_torch(zoo.get(name), zoo.example_input(name)))
              for name in filter(None, args.models.split(","))]
    graphs += [(f"synthetic-{n}", lambda n=int(n): synthetic_graph(n, seed=0))
               for n in filter(None, args.synthetic.split(","))]
    rows = []
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for name, make in graphs:
            graph = make()
            for scen_name in args.scenarios.split(","):
                scen = scenario(scen_name)
                for k in (int(x) for x in args.ks.split(",")):
                    row = run_one(graph, name, scen, k, time_limit=args.time_limit,
                                  repeats=args.repeats)
                    writer.writerow(row)
                    handle.flush()
                    rows.append(row)
                    print(f"{name:13s} {scen_name:6s} K={k} hpa {row['hpa_ms']} ms "
                          f"milp {row['milp_ms']} ms ({row['milp_status']}) gap "
                          f"{row['hpa_gap_pct']} % hpa solve {row['hpa_solve_ms_median']} ms "
                          f"full/adjust {row['full_over_adjust']}", flush=True)
    print(summary(rows))
    write_svg(plot_gap, args.out)


if __name__ == "__main__":
    d3opt.__version__  # noqa: B018 - the package must import before the long run
    main()
