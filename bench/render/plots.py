"""Plots for `trnbench report` (matplotlib, Agg backend, PNG bytes).

Each function takes result rows (dicts with "_run_dir" and "_run", as the report reads
them) and returns a list of (title, caption, png bytes); a plot without data is left out
rather than drawn empty. Figures use small multiples (one panel per model) so that
labels stay readable, and a log axis where values span more than `LOG_SPAN` times.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.analysis.estimate import METRICS, estimate, row_rng
from bench.analysis.samples import PooledCell, Samples
from bench.plan.cell import shape_label

LOG_SPAN = 5.0  # use a log axis when max/min over a panel exceeds this
PANEL_W, PANEL_H = 6.0, 3.8
MAX_COLS = 2
LEGEND_INSIDE = 5  # legends with more entries go outside the panel, on its right


def _legend(ax, entries: int, inside: str = "best") -> None:
    if entries > LEGEND_INSIDE:
        ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5), framealpha=0.9)
    else:
        ax.legend(fontsize=8, loc=inside, framealpha=0.85)


def pyplot():
    try:
        import matplotlib
    except ImportError:
        from bench.errors import UsageError

        raise UsageError("report needs matplotlib (a dependency of trnbench): pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def series_label(row: dict[str, Any], varying: set[str]) -> str:
    """'cpu/jit' plus whatever else varies in the report (dtype, run, copies, shape)."""
    parts = [f"{row.get('target')}/{row.get('compiler')}"]
    if "dtype" in varying:
        parts.append(str(row.get("dtype")))
    if "compiler_args" in varying and row.get("compiler_args"):
        parts.append(str(row.get("compiler_args")))
    if "copies" in varying:
        parts.append(f"{row.get('n_models')}x{row.get('workers_per_model')}")
    if "shape" in varying:
        parts.append(shape_label(row))
    if "run" in varying:
        parts.append(f"[{row.get('_run')}]")
    return " ".join(p for p in parts if p)


def color_key(row: dict[str, Any], varying: set[str]) -> str:
    """Colours follow target/compiler (and dtype, run) across panels; shapes and copies do not."""
    return series_label(row, varying - {"shape", "copies"})


def varying_fields(rows: list[dict[str, Any]]) -> set[str]:
    out = set()
    for name, fn in (("dtype", lambda r: r.get("dtype")), ("compiler_args", lambda r: r.get("compiler_args")),
                     ("copies", lambda r: (r.get("n_models"), r.get("workers_per_model"))),
                     ("shape", shape_label), ("run", lambda r: r.get("_run"))):
        if len({str(fn(r)) for r in rows}) > 1:
            out.add(name)
    return out


def _grid(plt, n: int, title: str, legend_entries: int = 0):
    """Panels in up to MAX_COLS columns; room on the right of each for a long legend."""
    cols = min(MAX_COLS, n)
    nrows = math.ceil(n / cols)
    width = PANEL_W + (2.6 if legend_entries > LEGEND_INSIDE else 0.0)
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols, PANEL_H * nrows + 0.6), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=13)
    return fig, list(axes.flat[:n])


def png_bytes(plt, fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _maybe_log(ax, values: list[float], axis: str = "x", span: float = LOG_SPAN) -> None:
    """A log axis with plain tick labels (0.2, 0.5, 1, 2) when the values span > `span` times."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    v = [x for x in values if x and x > 0 and math.isfinite(x)]
    if not v or max(v) / min(v) <= span:
        return
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    which = ax.xaxis if axis == "x" else ax.yaxis
    plain = FuncFormatter(lambda value, _pos: f"{value:g}")
    which.set_major_formatter(plain)
    if math.log10(max(v) / min(v)) < 1.5:  # under ~1.5 decades: label 2, 3, 5 too
        which.set_minor_locator(LogLocator(base=10, subs=(2.0, 3.0, 5.0)))
        which.set_minor_formatter(plain)
    else:
        which.set_minor_formatter(NullFormatter())


def _groups(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def _colors(labels: list[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {lab: cmap(i % 10) for i, lab in enumerate(dict.fromkeys(labels))}


def latency_cdf(rows: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """Empirical CDF of per-request latency, one panel per model and scenario, a line per cell."""
    plt = pyplot()
    data = []
    for r in rows:
        x = Samples(PooledCell({}, [r])).latency_ms()
        if x is not None and x.size:
            data.append((r, x))
    if not data:
        return []
    everywhere = varying_fields([r for r, _ in data])
    colors = _colors([color_key(r, everywhere) for r, _ in data])
    panels = _groups([d for d in data], lambda d: (d[0].get("model"), d[0].get("scenario")))
    most = max(len(items) for items in panels.values())
    fig, axes = _grid(plt, len(panels), "Latency distribution (CDF) per cell", most)
    styles = ["-", "--", ":", "-."]
    for ax, ((model, scenario), items) in zip(axes, panels.items()):
        varying = varying_fields([r for r, _ in items])
        batches = sorted({int(r.get("batch_size") or 1) for r, _ in items})
        values = []
        for r, x in sorted(items, key=lambda d: (str(d[0].get("target")), str(d[0].get("compiler")),
                                                 d[0].get("_run_order", 0), series_label(d[0], varying),
                                                 d[0].get("batch_size") or 0)):
            y = np.arange(1, x.size + 1) / x.size
            label = f"{series_label(r, varying)} b{r.get('batch_size')}"
            if r.get("status") == "unstable":
                label += " (unstable)"
            ax.step(x, y, where="post", color=colors[color_key(r, everywhere)], lw=1.4,
                    ls=styles[batches.index(int(r.get("batch_size") or 1)) % len(styles)], label=label)
            values += [float(x[0]), float(x[-1])]
        _maybe_log(ax, values)
        ax.set_title(f"{model} · {scenario}", fontsize=11)
        ax.set_xlabel("latency per request (ms)" + (", log scale" if ax.get_xscale() == "log" else ""))
        ax.set_ylabel("fraction of requests ≤ x")
        ax.set_ylim(0, 1.02)
        ax.grid(True, which="major", alpha=0.3)
        _legend(ax, len(items), "lower right")
    caption = ("Each line is one cell: the fraction of measured requests (warm-up excluded) that finished "
               "within x ms. Lines further left are faster; a long flat tail means outliers. "
               "Line style distinguishes batch sizes.")
    return [("Latency distribution", caption, png_bytes(plt, fig))]


def _throughput_ci(row: dict[str, Any]) -> tuple[float, float] | None:

    e = estimate(Samples(PooledCell({}, [row])), METRICS["throughput"], row_rng({"cell": row.get("cell_id")}, "t", 0))
    if e is None or e.draws is None:
        return None
    lo, hi = np.percentile(e.draws, [2.5, 97.5])
    return float(lo), float(hi)


def throughput_vs_batch(rows: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """samples/s against batch size, a panel per model, a line per target/compiler."""
    plt = pyplot()
    usable = [r for r in rows if _finite(r.get("throughput_avg"))]
    # Offline (throughput-scenario) figures where a model has them; else SingleStream's.
    by_model = _groups(usable, lambda r: r.get("model"))
    chosen = []
    for _model, items in by_model.items():
        offline = [r for r in items if r.get("scenario") == "throughput"]
        chosen += offline or [r for r in items if r.get("scenario") == "latency"]
    if not chosen:
        return []
    everywhere = varying_fields(chosen)
    colors = _colors([color_key(r, everywhere) for r in chosen])
    panels = _groups(chosen, lambda r: (r.get("model"), r.get("scenario")))
    most = max(len({series_label(r, everywhere) for r in items}) for items in panels.values())
    fig, axes = _grid(plt, len(panels), "Throughput against batch size", most)
    for ax, ((model, scenario), items) in zip(axes, panels.items()):
        batches = []
        varying = varying_fields(items)
        for label, pts in _groups(items, lambda r, v=varying: series_label(r, v)).items():
            color = colors[color_key(pts[0], everywhere)]
            pts = sorted(pts, key=lambda r: int(r.get("batch_size") or 1))
            x = [int(r.get("batch_size") or 1) for r in pts]
            y = [float(r["throughput_avg"]) for r in pts]
            err = [[0.0] * len(pts), [0.0] * len(pts)]
            for i, r in enumerate(pts):
                ci = _throughput_ci(r) if scenario != "latency" else None
                if ci:
                    err[0][i], err[1][i] = max(0.0, y[i] - ci[0]), max(0.0, ci[1] - y[i])
            ax.errorbar(x, y, yerr=err, marker="o", ms=5, lw=1.6, capsize=3, color=color, label=label)
            bad = [(xi, yi) for xi, yi, r in zip(x, y, pts) if r.get("status") == "unstable"]
            if bad:
                ax.scatter(*zip(*bad), s=140, facecolors="none", edgecolors="red", linewidths=1.5, zorder=5)
            batches += x
        ub = sorted(set(batches))
        if len(ub) > 1 and ub[-1] / ub[0] >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ub)
        ax.set_xticklabels([str(b) for b in ub])
        ax.set_ylim(bottom=0)
        ax.set_title(f"{model} · {scenario}", fontsize=11)
        ax.set_xlabel("batch size")
        ax.set_ylabel("samples/s")
        ax.grid(True, alpha=0.3)
        _legend(ax, len(ax.get_legend_handles_labels()[0]))
    caption = ("Inputs per second over the steady window, against batch size, one line per target/compiler "
               "(throughput scenario; latency scenario where a model has no throughput cells). Error bars: "
               "95% CI from batch means; a red ring marks an unstable cell.")
    return [("Throughput against batch size", caption, png_bytes(plt, fig))]


def throughput_vs_p99(rows: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """The trade-off: samples/s against p99 latency, a panel per model, points labelled by batch."""
    plt = pyplot()
    pts_all = [r for r in rows if _finite(r.get("throughput_avg")) and _finite(r.get("latency_ms_p99"))]
    by_model = _groups(pts_all, lambda r: r.get("model"))
    chosen = []
    for _model, items in by_model.items():
        offline = [r for r in items if r.get("scenario") == "throughput"]
        chosen += offline or items
    if not chosen:
        return []
    everywhere = varying_fields(chosen)
    colors = _colors([color_key(r, everywhere) for r in chosen])
    panels = _groups(chosen, lambda r: r.get("model"))
    most = max(len({series_label(r, everywhere) for r in items}) for items in panels.values())
    fig, axes = _grid(plt, len(panels), "Throughput against p99 latency", most)
    for ax, (model, items) in zip(axes, panels.items()):
        xs, ys = [], []
        varying = varying_fields(items)
        for label, pts in _groups(items, lambda r, v=varying: series_label(r, v)).items():
            color = colors[color_key(pts[0], everywhere)]
            pts = sorted(pts, key=lambda r: int(r.get("batch_size") or 1))
            x = [float(r["latency_ms_p99"]) for r in pts]
            y = [float(r["throughput_avg"]) for r in pts]
            ax.plot(x, y, marker="o", ms=6, lw=1, alpha=0.9, color=color, label=label)
            for xi, yi, r in zip(x, y, pts):
                ax.annotate(f"b{r.get('batch_size')}", (xi, yi), textcoords="offset points", xytext=(5, 4),
                            fontsize=8, color=color)
                if r.get("status") == "unstable":
                    ax.scatter([xi], [yi], s=140, facecolors="none", edgecolors="red", linewidths=1.5, zorder=5)
            xs += x
            ys += y
        _maybe_log(ax, xs, "x")
        _maybe_log(ax, ys, "y", span=30.0)
        if ax.get_yscale() != "log":
            ax.set_ylim(bottom=0, top=max(ys) * 1.15)
        ax.margins(x=0.12)
        ax.set_title(str(model), fontsize=11)
        ax.set_xlabel("p99 latency (ms)" + (", log scale" if ax.get_xscale() == "log" else ""))
        ax.set_ylabel("samples/s")
        ax.grid(True, which="major", alpha=0.3)
        _legend(ax, len(ax.get_legend_handles_labels()[0]))
    caption = ("Each point is a cell (labelled by batch size): up is more throughput, left is lower tail "
               "latency. Throughput-scenario cells where a model has them; a red ring marks an unstable cell.")
    return [("Throughput against p99 latency", caption, png_bytes(plt, fig))]


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def all_plots(rows: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    return latency_cdf(rows) + throughput_vs_batch(rows) + throughput_vs_p99(rows)
