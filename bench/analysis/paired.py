"""A/B in one run (`trnbench ab`): cells paired by position, compared round by round.

Both sides were measured interleaved, round by round, each pair adjacent in time (A B in
odd rounds, B A in even ones, so a linear drift cancels). For every pair and metric the
ratio B/A is taken per round, and the interval is a t interval over the rounds' log ratios
(mean ± t(R-1) · sd / √R): pairing removes what the machine did between rounds, the spread
of the paired ratios holds what is left. The verdict is the usual one: significant (a
one-sample t test on the log ratios, Holm over every row) and the whole interval beyond
the threshold. With no change on side B this is an A/A calibration: the widest interval is
the noise floor this machine supports, and the threshold to use is read off it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.analysis.compare import Comparison, MetricComparison, parse_threshold, set_aside, verdict
from bench.analysis.estimate import ALPHA, parse_metrics, round_values
from bench.analysis.samples import PooledCell, Samples, load_side
from bench.results.schema import KEY_COLUMNS
from bench.results.store import plan_positions, read_rows
from bench.stats import intervals
from bench.stats.significance import holm


@dataclass
class Calibration:
    """An A/A run's noise floor: the widest paired interval per metric, and a threshold."""

    floor: dict[str, float] = field(default_factory=dict)  # metric -> widest CI half-width (relative)

    def recommended(self) -> float:
        """The smallest whole-percent threshold every A/A interval stays inside (at least 2 %)."""
        widest = max(self.floor.values(), default=0.0)
        return max(0.02, math.ceil(widest * 100 + 0.5) / 100)

    def lines(self) -> list[str]:
        out = [f"noise floor ({m}): the widest A/A interval is ±{w:.1%}" for m, w in self.floor.items()]
        if self.floor:
            out.append(f"recommended --threshold for this machine and plan: {self.recommended():.0%}")
        return out


def compare_paired(dir_a: str | Path, dir_b: str | Path, *, metrics: str | Sequence[str] | None = None,
                   threshold: float | str = 0.05, alpha: float = ALPHA) -> tuple[Comparison, Calibration]:
    """The paired comparison of an `ab` run's two sides (run directories with rows in plan order)."""
    chosen = parse_metrics(metrics)
    thr = parse_threshold(threshold)
    a_side, b_side = load_side(dir_a, "A"), load_side(dir_b, "B")
    order_a, order_b = _in_order(Path(dir_a), a_side), _in_order(Path(dir_b), b_side)
    rows: list[MetricComparison] = []
    not_compared: list[tuple[dict[str, Any], str]] = []
    broken: list[tuple[dict[str, Any], str]] = []
    calibration = Calibration()
    for ca, cb in zip(order_a, order_b):
        if ca is None or cb is None:
            present = ca or cb
            if present is not None:
                not_compared.append((present.key, f"{'A' if ca is None else 'B'}: no row for this cell (run not finished)"))
            continue
        if set_aside(ca, cb, not_compared, broken):
            continue
        diff = [f"{c}: {ca.key.get(c)} -> {cb.key.get(c)}" for c in KEY_COLUMNS if ca.key.get(c) != cb.key.get(c)]
        scenario = str(ca.key.get("scenario") or "")
        for m in chosen:
            if not m.applies(scenario):
                continue
            va, vb = round_values(Samples(ca), m), round_values(Samples(cb), m)
            if va is None or vb is None or va.size != vb.size or va.size < intervals.MIN_GROUPS:
                continue
            logs = np.log(vb / va)
            ratio, lo, hi, p = intervals.paired_interval(logs)
            row = MetricComparison(ca.key, m.name, m.unit, m.lower_is_better, float(np.exp(np.log(va).mean())),
                                   float(np.exp(np.log(vb).mean())), ratio,
                                   n_a=int(va.size), n_b=int(vb.size),
                                   notes=[f"paired over {va.size} rounds"] + ([f"B: {', '.join(diff)}"] if diff else []))
            row.ci_low, row.ci_high, row.p = lo, hi, p
            rows.append(row)
            if math.isfinite(row.ci_low):
                half = max(row.ci_high - 1.0, 1.0 - row.ci_low) if not diff else 0.0
                calibration.floor[m.name] = max(calibration.floor.get(m.name, 0.0), half)
    for row, p_adj in zip(rows, holm([r.p for r in rows])):
        row.p_adj = float(p_adj)
        row.verdict = row.verdict_vs_shift = verdict(row, thr, alpha)
    comparison = Comparison(a_side, b_side, rows, [], [], not_compared, broken, {}, thr, alpha)
    comparison.lower_is_better = {m.name: m.lower_is_better for m in chosen}
    if len(order_a) != len(order_b):
        comparison.hints.append(f"A has {len(order_a)} cells, B {len(order_b)}: only the first pairs compared")
    return comparison, calibration


def _in_order(run_dir: Path, side) -> list[PooledCell | None]:
    """The side's cells by their position in its plan (run.json), None where a planned cell
    has no row: pairs are positions, so a cell missing on one side shifts no other pair."""
    by_id = {cell.rows[0].get("cell_id"): cell for cell in side.cells.values() if cell.rows}
    where = plan_positions(run_dir)
    if not where:  # a plan without cell ids: the order the rows were written
        return [by_id[row["cell_id"]] for row in read_rows(run_dir) if row.get("cell_id") in by_id]
    return [by_id.get(cid) for cid in sorted(where, key=where.__getitem__)]
