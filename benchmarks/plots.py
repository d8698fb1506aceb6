"""SVG figures of the benchmark CSVs (needs the ``bench`` extra: ``pip install -e ".[bench]"``).

Usage::

    python benchmarks/plots.py      # docs/gap.csv -> docs/gap.svg,
                                    # docs/trace_replay.csv -> docs/trace_replay.svg

``benchmarks/gap.py`` and ``benchmarks/trace_replay.py`` call :func:`write_svg` after writing
their CSV. matplotlib is imported only when a figure is drawn, so this module imports without
it; when it is missing :func:`write_svg` prints a hint instead of failing. The SVGs are
byte-identical from run to run (fixed hash salt, text kept as text, no date).
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

SVG_RC = {"svg.hashsalt": "d3opt", "svg.fonttype": "none"}


def _rows(csv_path) -> list[dict]:
    """The CSV's rows, as dicts keyed by column."""
    with open(csv_path, newline="") as handle:
        return list(csv.DictReader(handle))


def _number(cell: str) -> float | None:
    """The cell as a float; ``None`` for an empty cell (a failed method)."""
    return float(cell) if cell else None


def _median(values: list[float]) -> float | None:
    """The median; ``None`` (no bar) for no values."""
    return statistics.median(values) if values else None


def _pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(ax, groups: list, series: list, value, colors: dict) -> list[float]:
    """Grouped bars: one group per ``groups`` entry, one bar per ``series`` entry;
    ``value(group, series)`` gives the height, ``None`` for no bar. Returns the heights."""
    width = 0.8 / len(series)
    heights = []
    for i, name in enumerate(series):
        points = [(g, value(group, name)) for g, group in enumerate(groups)]
        points = [(g, v) for g, v in points if v is not None]
        ax.bar([g - 0.4 + (i + 0.5) * width for g, _ in points], [v for _, v in points],
               width, label=name, color=colors[name])
        heights += [v for _, v in points]
    ax.set_xticks(range(len(groups)), [str(group) for group in groups])
    return heights


def _log_y(ax, heights: list[float], *lines: float) -> None:
    """Log y axis whose bottom sits below the lowest positive bar and reference line, so
    that every bar shows (log-scale bars otherwise start at the axis edge)."""
    ax.set_yscale("log")
    ax.set_ylim(bottom=min(v for v in (*heights, *lines) if v > 0) / 2)


def _save(plt, fig, out_path) -> None:
    """Write ``fig`` as a reproducible SVG (see :data:`SVG_RC`, no date) and close it."""
    with plt.rc_context(SVG_RC):
        fig.savefig(out_path, format="svg", metadata={"Date": None})
    plt.close(fig)


def plot_gap(csv_path, out_path) -> None:
    """Figure of ``benchmarks/gap.py``'s CSV, written to ``out_path`` as SVG.

    Left: each method's latency divided by the MILP's, median over scenarios and K, per model.
    Right: HPA's warm median solve time per model and K (median over scenarios) against the
    10 ms target. The title gives the HPA/MILP gap over the instances with a proven optimum.
    Rows with an empty MILP cell, and empty method cells, are skipped.
    """
    rows = _rows(csv_path)
    methods = [column[:-3] for column in rows[0] if column.endswith("_ms")]
    models = list(dict.fromkeys(row["model"] for row in rows))
    ks = [f"K={k}" for k in sorted({int(row["K"]) for row in rows})]
    ratios = {(model, method): [] for model in models for method in methods}
    solve = {(model, k): [] for model in models for k in ks}
    gaps = []
    for row in rows:
        solve[row["model"], f"K={int(row['K'])}"].append(float(row["hpa_solve_ms_median"]))
        milp = _number(row["milp_ms"])
        if milp is None:
            continue
        for method in methods:
            latency = _number(row[f"{method}_ms"])
            if latency is not None:
                ratios[row["model"], method].append(latency / milp)
        if row["milp_status"] == "optimal" and row["hpa_gap_pct"]:
            gaps.append(float(row["hpa_gap_pct"]))

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=[3, 2],
                                      layout="constrained")
    heights = _bars(left, models, methods,
                    lambda model, method: _median(ratios[model, method]),
                    {method: f"C{i}" for i, method in enumerate(methods)})
    left.axhline(1, color="black", linewidth=0.8)
    _log_y(left, heights, 1)
    left.set_ylabel("latency / MILP latency")
    left.set_title("Latency relative to the MILP (median over scenarios and K)")
    left.legend(ncols=len(methods), fontsize="small", loc="upper center",
                bbox_to_anchor=(0.5, -0.08))

    heights = _bars(right, models, ks, lambda model, k: _median(solve[model, k]),
                    {k: f"C{i}" for i, k in enumerate(ks)})
    right.axhline(10, color="black", linestyle="--", linewidth=1, label="10 ms target")
    _log_y(right, heights, 10)
    right.set_ylabel("HPA solve time, warm median (ms)")
    right.set_title("HPA solve time (median over scenarios)")
    right.legend(ncols=len(ks) + 1, fontsize="small", loc="upper center",
                 bbox_to_anchor=(0.5, -0.08))

    gap = (f"mean {statistics.mean(gaps):.3f} %, worst {max(gaps):.3f} %" if gaps else "n/a")
    fig.suptitle(f"HPA vs MILP optimum, {len(rows)} instances; HPA/MILP gap on the "
                 f"{len(gaps)} with a proven optimum: {gap}")
    _save(plt, fig, out_path)


def plot_trace_replay(csv_path, out_path) -> None:
    """Figure of ``benchmarks/trace_replay.py``'s CSV, written to ``out_path`` as SVG.

    One column per model, one bar group per trace. Top: median re-solve time per strategy
    (log scale; ``static`` never re-solves) with the 5 ms ``hpa`` target. Bottom: mean
    latency regret against the cold optimum per strategy (``cold`` is the reference).
    """
    rows = _rows(csv_path)
    models = list(dict.fromkeys(row["model"] for row in rows))
    traces = list(dict.fromkeys(row["trace"] for row in rows))
    strategies = list(dict.fromkeys(row["strategy"] for row in rows))
    colors = {strategy: f"C{i}" for i, strategy in enumerate(strategies)}
    cell = {(row["model"], row["trace"], row["strategy"]): row for row in rows}

    def value(model, column):
        """``(trace, strategy) -> float | None`` reading ``column`` of ``model``'s rows."""
        def get(trace, strategy):
            row = cell.get((model, trace, strategy))
            return None if row is None else _number(row[column])
        return get

    plt = _pyplot()
    fig, axes = plt.subplots(2, len(models), figsize=(4.2 * len(models), 6.4), sharey="row",
                             squeeze=False, layout="constrained")
    times = []
    for column, model in enumerate(models):
        top, bottom = axes[0, column], axes[1, column]
        times += _bars(top, traces, [s for s in strategies if s != "static"],
                       value(model, "median_ms"), colors)
        if "hpa" in colors:
            top.axhline(5, color=colors["hpa"], linestyle="--", linewidth=1,
                        label="hpa target (5 ms)")
        top.set_title(model)
        _bars(bottom, traces, [s for s in strategies if s != "cold"],
              value(model, "mean_regret_pct"), colors)
    _log_y(axes[0, 0], times, 5)
    axes[1, 0].set_yscale("symlog", linthresh=1)
    axes[0, 0].set_ylabel("median re-solve time (ms)")
    axes[1, 0].set_ylabel("mean regret (%), symlog")

    handles = {}
    for ax in axes[:, 0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    order = {strategy: i for i, strategy in enumerate(strategies)}
    handles = dict(sorted(handles.items(), key=lambda item: order.get(item[0], len(order))))
    fig.legend(handles.values(), handles.keys(), loc="outside lower center",
               ncols=len(handles), fontsize="small")
    setup = ", ".join(f"{key}={'/'.join(dict.fromkeys(row[key] for row in rows))}"
                      for key in ("scenario", "K", "scale"))
    fig.suptitle(f"Trace replay ({setup}): re-solve time and regret per strategy")
    _save(plt, fig, out_path)


def write_svg(plot, csv_path) -> Path | None:
    """Run ``plot`` on ``csv_path``, writing the SVG beside it (same stem); return its path.

    When matplotlib is missing, print a one-line hint and return ``None`` instead.
    """
    out_path = Path(csv_path).with_suffix(".svg")
    try:
        plot(csv_path, out_path)
    except ImportError as err:
        print(f"no plot written ({err.name or err} is missing): pip install -e \".[bench]\"",
              file=sys.stderr)
        return None
    print(f"wrote {out_path}", file=sys.stderr)
    return out_path


def main() -> int:
    """Regenerate docs/gap.svg and docs/trace_replay.svg from the CSVs in docs/."""
    docs = Path(__file__).resolve().parent.parent / "docs"
    for plot, name in ((plot_gap, "gap.csv"), (plot_trace_replay, "trace_replay.csv")):
        if write_svg(plot, docs / name) is None:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
