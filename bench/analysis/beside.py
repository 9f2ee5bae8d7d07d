"""`run --control`: each cell judged against its control's windows, measured beside its own
in the same run (bench.execute.local pairs them, bench.execute.rounds keeps the per-round
figures in the row: `latency_ms_p50_rounds` beside `control_latency_ms_p50_rounds`)."""

from __future__ import annotations

import math

import numpy as np

from bench.analysis.estimate import Metric, verdict_of
from bench.analysis.samples import PooledCell
from bench.stats import intervals
from bench.stats.intervals import json_list, paired_logs
from bench.stats.significance import holm

# the per-round columns a metric's windows are paired on (run --control; bench.execute.rounds)
BESIDE = {"p50": ("latency_ms_p50_rounds", "control_latency_ms_p50_rounds"),
          "throughput": ("throughput_rounds", "control_throughput_rounds")}


def windows_beside(row, ca: PooledCell, cb: PooledCell, metric: Metric) -> None:
    """Attach each side's per-round log(cell / control) when both sides were measured beside
    the same control (`run --control`), every usable run of a side end to end."""
    if metric.name not in BESIDE:
        return
    mine, theirs = BESIDE[metric.name]
    models = {str(r.get("control_model") or "") for c in (ca, cb) for r in c.usable}
    if len(models) != 1 or "" in models:
        return
    sides = []
    for cell in (ca, cb):
        logs, ctrl = [], []
        for r in cell.usable:
            logs.append(paired_logs(r.get(mine), r.get(theirs)))
            ctrl.append(np.log(np.array([x for x in json_list(r.get(theirs)) if x > 0], dtype=np.float64)))
        sides.append((np.concatenate(logs), np.concatenate(ctrl)))
    if min(sides[0][0].size, sides[1][0].size) < 2:
        return
    (row.beside_a, row.control_a), (row.beside_b, row.control_b) = sides
    row.control_model = models.pop()


def against_control_windows(rows: list, metrics: list[Metric], threshold: float,
                            alpha: float) -> dict[str, tuple[float, float, float, int]]:
    """Judge each cell measured beside its control's windows (`run --control`) on them.

    Within a run, the cell's window and the control's are back to back in every round, so a
    round's log(cell / control) holds what the machine did to both only once; across the two
    runs those per-round values are compared with Yuen's trimmed Welch interval and test
    (bench.analysis.intervals.welch_interval), Holm over the judged rows, and the usual verdict
    rule: a change in the cell moves the ratio, a slower machine moves both sides of it. The
    shift reported is the control's own B/A (median over the cells it was measured beside)."""
    shift: dict[str, tuple[float, float, float, int]] = {}
    judged = [r for r in rows if r.beside_a is not None and r.beside_b is not None]
    fits = [intervals.welch_interval(r.beside_a, r.beside_b) for r in judged]
    for r, fit, p_adj in zip(judged, fits, holm([f[3] for f in fits])):
        ratio, lo, hi, _ = fit
        r.verdict_vs_shift = verdict_of(lo, hi, float(p_adj), r.lower_is_better, threshold, alpha)
        r.notes.append(f"against {r.control_model} measured beside it: x{ratio:.3f} [{lo:.3f}, {hi:.3f}], "
                       f"p_holm {p_adj:.3g} ({r.beside_a.size} A, {r.beside_b.size} B rounds)")
    for m in metrics:
        mine = [r for r in judged if r.metric == m.name]
        if not mine:
            continue
        moved = [math.exp(float(r.control_b.mean() - r.control_a.mean())) for r in mine]
        _, lo, hi, _ = intervals.welch_interval(np.concatenate([r.control_a for r in mine]),
                                                np.concatenate([r.control_b for r in mine]))
        shift[m.name] = (float(np.median(moved)), lo, hi, len(mine))
    return shift
