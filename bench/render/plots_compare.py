"""Plots of changes for `trnbench report`: a forest plot of B/A ratios, and history panels.

Forest: one line per cell and metric, the ratio B/A with its 95 % CI on a log axis, the
threshold band shaded, coloured by verdict; one panel per metric with the cells on a shared
axis, so 50+ cells stay readable (the figure grows with the cells). History: one small
panel per cell, a figure against run time (or SDK), CIs as error bars, and the runs where
`compare` against the run before would flag a change marked.
"""

from __future__ import annotations

import math
from typing import Any

from bench.render.plots import png_bytes, pyplot

VERDICT_COLOURS = {"slower": "#c0392b", "faster": "#1e8449", "~": "#555555"}
HISTORY_COLS = 5


def forest(rows: list[Any], threshold: float) -> bytes | None:
    """rows: MetricComparison-like (label, metric, ratio, ci_low, ci_high, verdict); None if empty."""
    usable = [r for r in rows if math.isfinite(r.ratio) and r.ratio > 0]
    if not usable:
        return None
    plt = pyplot()
    order = {"p50": 0, "p90": 1, "p95": 2, "p99": 3, "mean": 4, "throughput": 5}
    metrics = sorted(dict.fromkeys(r.metric for r in usable), key=lambda m: (order.get(m, 9), m))
    labels = list(dict.fromkeys(r.label for r in usable))
    height = max(2.5, 0.24 * len(labels) + 1.4)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics) + 3.5, height), sharey=True, squeeze=False)
    y = {lab: i for i, lab in enumerate(reversed(labels))}
    for ax, metric in zip(axes[0], metrics):
        ax.axvspan(1 - threshold, 1 + threshold, color="#eeeeee", zorder=0)
        ax.axvline(1.0, color="#888888", lw=0.8, zorder=1)
        for r in (r for r in usable if r.metric == metric):
            lo = r.ci_low if math.isfinite(r.ci_low) else r.ratio
            hi = r.ci_high if math.isfinite(r.ci_high) else r.ratio
            colour = VERDICT_COLOURS.get(r.verdict, "#555555")
            ax.errorbar([r.ratio], [y[r.label]], xerr=[[r.ratio - lo], [hi - r.ratio]], fmt="o", ms=3.5,
                        color=colour, ecolor=colour, elinewidth=1.2, capsize=2)
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{metric}: B / A", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(list(y.values()))
    axes[0][0].set_yticklabels(list(y.keys()), fontsize=7.5)
    axes[0][0].set_ylim(-0.7, len(labels) - 0.3)
    fig.suptitle(f"B / A per cell with 95% CI (grey band: the {threshold:.0%} threshold; red slower, green "
                 "faster, grey no change)", fontsize=10)
    return png_bytes(plt, fig)


def history(series: dict[str, list[dict[str, Any]]], metric: str, unit: str, x_label: str) -> bytes | None:
    """series: cell label -> points {x, x_text, value, lo, hi, flag ('slower'|'faster'|'')}."""
    panels = {k: v for k, v in series.items() if any(math.isfinite(p["value"]) for p in v)}
    if not panels:
        return None
    plt = pyplot()
    n = len(panels)
    cols = min(HISTORY_COLS, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.3 * cols, 2.4 * nrows + 0.8), squeeze=False, sharex=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    ticks: dict[float, str] = {}
    for ax, (label, points) in zip(axes.flat, panels.items()):
        xs = [p["x"] for p in points]
        vs = [p["value"] for p in points]
        lo = [p["value"] - p["lo"] if math.isfinite(p["lo"]) else 0.0 for p in points]
        hi = [p["hi"] - p["value"] if math.isfinite(p["hi"]) else 0.0 for p in points]
        ax.errorbar(xs, vs, yerr=[lo, hi], fmt="-o", ms=3, lw=1, color="#2c5d8f", ecolor="#8fa9c7", capsize=2)
        for p in points:
            ticks[p["x"]] = p["x_text"]
            if p["flag"]:
                ax.plot([p["x"]], [p["value"]], marker="v" if p["flag"] == "slower" else "^", ms=9,
                        color=VERDICT_COLOURS[p["flag"]], zorder=5, linestyle="none")
        ax.set_title(label, fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        if ax.get_visible():
            ax.set_xticks(sorted(ticks))
            ax.set_xticklabels([ticks[t] for t in sorted(ticks)], rotation=45, ha="right", fontsize=6.5)
            ax.set_xlabel(x_label, fontsize=7.5)
    fig.suptitle(f"{metric} ({unit}) per cell over the runs, with 95% CIs; a red \u25bc / green \u25b2 marks a run "
                 "that compare calls slower / faster than the run before", fontsize=9.5)
    return png_bytes(plt, fig)
