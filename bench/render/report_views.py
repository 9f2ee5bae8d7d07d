"""What `report` puts first: for two runs the comparison, for three or more the history.

- `comparison(dir_a, dir_b)`: the run-wide shift in words, the verdict table (regressions
  first: B/A with its CI, verdict against the shift, notes), a forest plot of every ratio,
  and the environment differences that matter (software, instance, device, CPU).
- `history(runs, by)`: per cell, p50 and throughput over the runs (ordered by run time, or
  by SDK version with by="sdk"), with CIs, and a mark where `compare` against the run before
  flags the cell slower or faster (in the spirit of asv's published graphs). Every plot comes
  with a text alternative (a table of the same figures).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from bench.errors import UsageError
from bench.plan.cell import cell_label

MATTERS = [("instance", "instance_type"), ("CPU", "cpu_model"), ("CPU count", "cpu_count"),
           ("accelerator", "accelerator"), ("device", "device_name"), ("python", "python"), ("torch", "torch"),
           ("transformers", "transformers"), ("torch-neuronx", "torch_neuronx"), ("neuronx-cc", "neuronx_cc"),
           ("trnbench", "harness_version"), ("git commit", "git_commit")]
ORDER = {"slower": 0, "faster": 1, "~": 2}
NOTE_CHARS = 160  # a verdict's notes (both sides' stability in words) cut to this in the table


@dataclass
class ComparisonView:
    shift: list[str]
    summary: str
    headers: list[str]
    body: list[list[str]]
    classes: list[str]
    env_headers: list[str]
    env_body: list[list[str]]
    plots: list[tuple[str, str, bytes]] = field(default_factory=list)
    apart: list[str] = field(default_factory=list)  # cells not compared, broken, only on one side
    op_shifts: list[str] = field(default_factory=list)  # profiled in both: the operators that moved most


def comparison(dir_a, dir_b, env_a: dict[str, Any], env_b: dict[str, Any], plots: bool = True) -> ComparisonView:
    from bench.analysis.compare import compare_runs
    from bench.render.format import fmt_ci, fmt_p, fmt_ratio, fmt_value

    c = compare_runs(dir_a, dir_b)
    rows = sorted(c.rows, key=lambda r: (ORDER.get(r.verdict_vs_shift, 3), -abs(math.log(r.ratio))
                                         if r.ratio and r.ratio > 0 and math.isfinite(r.ratio) else 0.0))
    headers = ["cell", "metric", "A", "B", "B/A", "95% CI", "p (Holm)", "verdict", "notes"]
    body, classes = [], []
    for r in rows:
        notes = "; ".join(r.notes + ([r.env_diff] if r.env_diff else []))
        body.append([r.label, r.metric, fmt_value(r.a), fmt_value(r.b), fmt_ratio(r.ratio), fmt_ci(r.ci_low, r.ci_high),
                     fmt_p(r.p_adj), r.verdict_vs_shift, notes if len(notes) <= NOTE_CHARS
                     else notes[:NOTE_CHARS] + "… (the results table below has it all)"])
        classes.append({"slower": "regression", "faster": "improvement"}.get(r.verdict_vs_shift, ""))
    diff_h, diff = ["", "A", "B"], []
    for label, col in MATTERS:
        va, vb = env_a.get(col), env_b.get(col)
        if str(va or "-") != str(vb or "-"):
            diff.append([label, str(va or "-"), str(vb or "-")])
    apart = [f"broken in B: {cell_label(k)}: {why}" for k, why in c.broken]
    apart += [f"not compared: {cell_label(k)}: {why}" for k, why in c.not_compared]
    apart += [f"only in A: {cell_label(k)}" for k in c.only_a] + [f"only in B: {cell_label(k)}" for k in c.only_b]
    from bench.render.profiles import shift_text

    view = ComparisonView(c.shift_lines(), c.summary(), headers, body, classes, diff_h, diff, apart=apart,
                          op_shifts=[f"{cell_label(k)}: {shift_text(moved)}" for k, moved in c.op_shifts])
    if plots:
        from bench.render.plots_compare import forest

        png = forest(rows, c.threshold)
        if png is not None:
            view.plots.append(("B / A per cell and metric", "Each line is one cell and metric: the ratio B/A "
                               "(a dot) and its 95% confidence interval; the verdict table below holds the "
                               "same figures as text.", png))
    return view


@dataclass
class HistoryView:
    by: str
    headers: list[str]
    body: list[list[str]]
    plots: list[tuple[str, str, bytes]] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)


def _sdk(row: dict[str, Any]) -> str:
    for col, name in (("neuronx_cc", "neuronx-cc"), ("torch_neuronx", "torch-neuronx"), ("torch", "torch")):
        if row.get(col):
            return f"{name} {row[col]}"
    return "?"


def _version_key(text: str) -> tuple:
    import re

    return tuple(int(x) if x.isdigit() else x for x in re.split(r"[.\s+-]", text))


def history(runs: list[dict[str, Any]], by: str = "time", plots: bool = True) -> HistoryView:
    """runs: the report's runs ({"dir", "id", "tag", "meta", "rows"}), three or more."""
    from bench.analysis.compare import compare_runs
    from bench.render.format import fmt_value

    if by not in ("time", "sdk"):
        raise UsageError(f"--by {by!r}: a history is by time or by sdk")

    def when(run) -> float:
        return float(run["meta"].get("created") or 0.0)

    minutes = [time.strftime("%m-%d %H:%M", time.localtime(when(r))) for r in runs]
    stamp = "%m-%d %H:%M" if len(set(minutes)) == len(minutes) else "%m-%d %H:%M:%S"  # runs a minute apart

    def x_text(run) -> str:
        if by == "sdk":
            return _sdk(run["rows"][0]) if run["rows"] else "?"
        return time.strftime(stamp, time.localtime(when(run)))

    ordered = sorted(runs, key=lambda r: (_version_key(x_text(r)), when(r)) if by == "sdk" else when(r))
    keyed: list[dict[str, dict[str, Any]]] = []
    for run in ordered:
        usable = {cell_label(_key(r)): r for r in run["rows"] if r.get("status") in ("ok", "unstable")}
        keyed.append(usable)
    cells = [c for c in dict.fromkeys(c for k in keyed for c in k) if sum(c in k for k in keyed) >= 2]
    if not cells:
        raise UsageError(f"a history needs cells in common between runs: these {len(runs)} runs share none")
    flags: dict[tuple[str, int, str], str] = {}
    flagged: list[str] = []
    for i in range(1, len(ordered)):
        c = compare_runs(ordered[i - 1]["dir"], ordered[i]["dir"], metrics="p50,throughput")
        for r in c.rows:
            if r.verdict_vs_shift in ("slower", "faster"):
                flags[(r.label, i, r.metric)] = r.verdict_vs_shift
                flagged.append(f"{x_text(ordered[i])}: {r.label} {r.metric} {r.verdict_vs_shift} than the run before "
                               f"(B/A {r.ratio:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}])")
    x_label = "SDK" if by == "sdk" else "run started"
    headers = ["cell", "metric", *[x_text(r) for r in ordered]]
    body = []
    view = HistoryView(by, headers, body, flagged=flagged)
    for metric, column, lo_col, hi_col, unit in (
            ("p50", "latency_ms_p50", "latency_ms_p50_ci_low", "latency_ms_p50_ci_high", "ms"),
            ("throughput", "throughput_avg", "throughput_ci_low", "throughput_ci_high", "samples/s")):
        series: dict[str, list[dict[str, Any]]] = {}
        for cell in cells:
            points = []
            for i, (run, rows) in enumerate(zip(ordered, keyed)):
                row = rows.get(cell)
                if row is None or not _finite(row.get(column)):
                    continue
                if metric == "throughput" and row.get("scenario") == "latency":
                    continue  # single-stream throughput is 1 / latency: the p50 panel says it
                points.append({"x": float(i), "x_text": x_text(run), "value": float(row[column]),
                               "lo": float(row[lo_col]) if _finite(row.get(lo_col)) else math.nan,
                               "hi": float(row[hi_col]) if _finite(row.get(hi_col)) else math.nan,
                               "flag": flags.get((cell, i, metric), "")})
            if points:
                series[cell] = points
                values = {p["x"]: p for p in points}
                body.append([cell, f"{metric} ({unit})", *[
                    (fmt_value(values[float(i)]["value"]) + {"slower": " ▼", "faster": " ▲"}.get(values[float(i)]["flag"], ""))
                    if float(i) in values else "" for i in range(len(ordered))]])
        if plots and series:
            from bench.render.plots_compare import history as history_plot

            png = history_plot(series, metric, unit, x_label)
            if png is not None:
                view.plots.append((f"History: {metric}", f"{metric} of each cell in every run, ordered by "
                                   f"{'SDK version' if by == 'sdk' else 'run time'}; the table below holds the "
                                   "same figures as text (▼ slower / ▲ faster than the run before).", png))
    return view


def _key(row: dict[str, Any]) -> dict[str, Any]:
    from bench.results.schema import KEY_COLUMNS

    return {c: row.get(c) for c in KEY_COLUMNS}


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
