"""Compare runs with stated uncertainty: run vs run, run vs published figures, pivots.

Run vs run (`compare_runs`, `trnbench compare A B`)
-------------------------------------------------------
Rows of the two sides are joined on the cell key (`bench.results.KEY_COLUMNS`, minus any
`ignore` columns), never on `cell_id` alone, so runs from different machines join. A side
may be several runs: rows with the same key are pooled (their raw samples concatenated).
For each joined cell and metric the table gives the ratio B/A with a 95 % confidence
interval computed from the raw samples (`samples/<cell_id>.npz`):

- latency quantiles (p50, p90, p95, p99): percentile bootstrap of the ratio of the two
  sample quantiles. The bootstrap distribution of an order statistic is known exactly --
  the k-th smallest of a resample is <= x(j) iff Binomial(n, j/n) >= k -- so each
  replicate is drawn by inverting that CDF with one uniform number: O(n + B log n), no
  resampling of the n samples, and a fixed seed makes it reproducible. A quantile whose
  distribution-free interval (`bench.stats.quantile_ci_ranks`) is unbounded at this sample
  size (p99 needs about 370 samples) gets no CI: the bootstrap of an extreme order
  statistic would be falsely tight.
- mean latency: normal approximation (central limit theorem) of each side's mean.
- correlation in time: requests measured back to back are not independent (a neighbour
  or a frequency change slows a stretch of them). For latency metrics the spread of the
  replicates is widened by the square root of the design effect: the long-run variance of
  the series (the indicator x <= quantile, or x for the mean) over its iid variance,
  estimated by batch means over 20 contiguous batches (`design_effect`). Rows where it
  matters say so in their notes.
- throughput (scenarios other than `latency`, where throughput is only 1/latency): samples
  (requests x batch size) completed per second, by batch means. The steady window (as in
  `bench.stats.throughput_summary`) is cut into K equal intervals, K = min(20,
  completions // 8) and at least 5; the completions in each give a rate, and the mean of
  the rates is the run's throughput. The CI is the percentile
  bootstrap of the ratio of the mean rates. Intervals this wide keep neighbouring rates
  close to independent, which single inter-completion gaps (with several requests in
  flight) are not.

"Is it different at all" is a two-sided Mann-Whitney U test on the latency samples
(latency metrics) or on the interval rates (throughput). The p-values of all rows are
adjusted with Holm's step-down method, which keeps the family-wise error rate -- the
chance of any false alarm in the whole table -- at or below `alpha`.

Verdict per row: `slower` when the Holm-adjusted p < alpha AND the whole CI of the cost
ratio (B/A for latency, A/B for throughput) lies above 1 + threshold; `faster` when it is
significant and the whole CI lies below 1 / (1 + threshold); `~` otherwise. Both are needed:
samples within one run are not independent (frequency and thermal drift, neighbours on a
shared host), and two runs of the same code differ systematically by a few percent. With
thousands of samples such a shift is "significant" yet meaningless; the threshold says how
large a change must be to matter, and the CI must clear it entirely, so that two runs of
the same code on the same machine pass the gate. What no statistic inside one run can
see is drift *between* runs (a neighbour busy during B only): that is what the threshold
absorbs, so on a shared or busy machine raise it. The Mann-Whitney p-values assume
independent requests and are optimistic; the verdict leans on the (widened) CI.

The gate (`Comparison.regressions`) counts `slower` rows and cells that worked in A but
failed or gave wrong outputs in B. Rows whose environments differ in a way that matters
(`ENV_COLUMNS`, or a key column left out of the join with `ignore`) are compared, with the
difference named in the notes -- that is how "did SDK 2.x make it slower" is asked.

Run vs published figures: bench.analysis.reference; pivots: bench.analysis.pivot.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.analysis.beside import against_control_windows, windows_beside
from bench.analysis.estimate import (
    ALPHA,
    N_BOOT,
    SEED,
    Metric,
    estimate,
    labelled_round_values,
    parse_metrics,
    row_rng,
    verdict_of,
)
from bench.analysis.profiles import OpShift, op_shifts
from bench.analysis.samples import BROKEN, PooledCell, Samples, Side, load_side, to_float
from bench.errors import UsageError
from bench.plan.cell import cell_label
from bench.results.schema import KEY_COLUMNS
from bench.stats import intervals
from bench.stats.significance import holm, mann_whitney, welch_log

THRESHOLD = 0.05
# Environment facts (and measurement conditions) that make two figures not the same
# experiment when they differ.
ENV_COLUMNS = ("model_fingerprint", "instance_type", "accelerator", "device_name", "cpu_model", "torch",
               "torch_neuronx", "neuronx_cc", "transformers", "keep_freed_memory")


def parse_threshold(text: str | float) -> float:
    """'5%' or '0.05' -> 0.05. Must be in [0, 10)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip()
        try:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            raise UsageError(f"threshold must be a percentage like 5% or a fraction like 0.05, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value < 10:
        raise UsageError(f"threshold must be between 0% and 1000%, got {text!r}")
    return value


@dataclass
class MetricComparison:
    """One compared (cell, metric): values, ratio B/A with its CI, p-value and verdict."""

    key: dict[str, Any]
    metric: str
    unit: str
    lower_is_better: bool
    a: float
    b: float
    ratio: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    p: float = float("nan")
    p_adj: float = float("nan")
    verdict: str = "~"
    verdict_vs_shift: str = "~"  # the verdict once the run-wide shift is taken out (the gate's)
    notes: list[str] = field(default_factory=list)
    env_diff: str = ""
    n_a: int = 0
    n_b: int = 0
    draws: np.ndarray | None = field(default=None, repr=False)
    # each side's value per group of requests, keyed (run directory, round): --control pairs them
    groups_a: dict[tuple[str, int], float] = field(default_factory=dict, repr=False)
    groups_b: dict[tuple[str, int], float] = field(default_factory=dict, repr=False)
    # `run --control`: log(cell / control) per round, the control's windows measured beside the
    # cell's in the same run (every run of a side, end to end); and the control's own values
    beside_a: np.ndarray | None = field(default=None, repr=False)
    beside_b: np.ndarray | None = field(default=None, repr=False)
    control_a: np.ndarray | None = field(default=None, repr=False)
    control_b: np.ndarray | None = field(default=None, repr=False)
    control_model: str = ""

    @property
    def label(self) -> str:
        return cell_label(self.key)

    @property
    def change(self) -> float:
        """Relative change of the metric, B/A - 1 (+0.2 = 20 % more latency or throughput)."""
        return self.ratio - 1.0

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.key.items()}
        d.update(metric=self.metric, unit=self.unit, a=self.a, b=self.b, ratio=self.ratio,
                 ci_low=self.ci_low, ci_high=self.ci_high, change_pct=100 * self.change,
                 p_value=self.p, p_holm=self.p_adj, verdict=self.verdict, verdict_vs_shift=self.verdict_vs_shift,
                 n_a=self.n_a, n_b=self.n_b,
                 env_diff=self.env_diff, notes="; ".join(self.notes))
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass
class Comparison:
    a: Side
    b: Side
    rows: list[MetricComparison]
    only_a: list[dict[str, Any]]
    only_b: list[dict[str, Any]]
    not_compared: list[tuple[dict[str, Any], str]]  # (key, reason)
    broken: list[tuple[dict[str, Any], str]]  # worked in A, failed or inaccurate in B
    geomean: dict[str, tuple[float, float, float, int]]  # metric -> (ratio, lo, hi, cells)
    threshold: float
    alpha: float
    hints: list[str] = field(default_factory=list)
    # metric -> (median B/A over the cells, CI low, CI high, cells): what moved everything
    shift: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)
    lower_is_better: dict[str, bool] = field(default_factory=dict)
    fail_on_shift: float | None = None
    # cells whose model weights differ between A and B (bench.seeds.fingerprint): (key, A, B)
    different_models: list[tuple[dict[str, Any], str, str]] = field(default_factory=list)
    shift_source: str = ""  # the control models the shift was taken from ("": every cell)
    # profiled cells (--profile) in both: the operators whose share of the pass moved most
    op_shifts: list[tuple[dict[str, Any], list[OpShift]]] = field(default_factory=list)

    @property
    def slower(self) -> list[MetricComparison]:
        return [r for r in self.rows if r.verdict == "slower"]

    @property
    def faster(self) -> list[MetricComparison]:
        return [r for r in self.rows if r.verdict == "faster"]

    @property
    def regressions(self) -> int:
        """What the CI gate fails on: cells significantly slower beyond the threshold once the
        run-wide shift is taken out, newly broken cells, and a shift beyond `fail_on_shift`."""
        slower = [r for r in self.rows if r.verdict_vs_shift == "slower"]
        return len(slower) + len(self.broken) + len(self.shift_failures)

    @property
    def shift_failures(self) -> list[str]:
        """Metrics whose run-wide shift is slower than `fail_on_shift` (when it is set)."""
        if self.fail_on_shift is None:
            return []
        out = []
        for name, (_ratio, lo, hi, _n) in self.shift.items():
            worse = lo if self.lower_is_better.get(name, True) else 1 / hi
            if math.isfinite(worse) and worse > 1 + self.fail_on_shift:
                out.append(name)
        return out

    def summary(self) -> str:
        n = len(self.rows)
        same = n - len(self.slower) - len(self.faster)
        text = (f"{n} rows: {len(self.slower)} slower, {len(self.faster)} faster, {same} ~ "
                f"(threshold {self.threshold:.1%}, Holm-adjusted alpha {self.alpha:g})")
        relative = [r for r in self.rows if r.verdict_vs_shift == "slower"]
        if self.shift:
            text += f"; {len(relative)} slower than the run-wide shift"
        if self.broken:
            text += f"; {len(self.broken)} cells broken in {self.b.label}"
        if self.shift_failures:
            text += f"; run-wide shift beyond {self.fail_on_shift:.0%} in {', '.join(self.shift_failures)}"
        return text

    def shift_lines(self) -> list[str]:
        """The run-wide shift in words, and what separate runs cannot tell apart."""
        lines = []
        for name, (ratio, lo, hi, n) in self.shift.items():
            worse = ratio if self.lower_is_better.get(name, True) else 1 / ratio
            what = "slower" if worse > 1 else "faster"
            where = (f"on the control ({self.shift_source}, {n} cell{'' if n == 1 else 's'})" if self.shift_source
                     else f"across all {n} cells")
            lines.append(f"{name}: B ran {abs(worse - 1):.0%} {what} {where} (median B/A {ratio:.3f} "
                         f"[{lo:.3f}, {hi:.3f}]): the machine, or a change that touches everything")
        if lines:
            lines.append("separate runs cannot tell a slower machine from a change that touches every cell: the "
                         "gate judges each cell against this shift (--fail-on-shift PCT gates the shift itself); "
                         "`trnbench ab` measures both sides interleaved in one run and can tell them apart")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "a": [str(d) for d in self.a.dirs], "b": [str(d) for d in self.b.dirs],
            "threshold": self.threshold, "alpha": self.alpha,
            "rows": [r.as_dict() for r in self.rows],
            "geomean": {m: {"ratio": g[0], "ci_low": g[1], "ci_high": g[2], "cells": g[3]}
                        for m, g in self.geomean.items()},
            "only_a": [cell_label(k) for k in self.only_a], "only_b": [cell_label(k) for k in self.only_b],
            "not_compared": [{"cell": cell_label(k), "reason": r} for k, r in self.not_compared],
            "broken": [{"cell": cell_label(k), "reason": r} for k, r in self.broken],
            "different_models": [{"cell": cell_label(k), "a": fa, "b": fb} for k, fa, fb in self.different_models],
            "shift": {m: {"ratio": g[0], "ci_low": g[1], "ci_high": g[2], "cells": g[3]} for m, g in self.shift.items()},
            "summary": self.summary(), "regressions": self.regressions,
            "op_shifts": [{"cell": cell_label(k), "ops": [{"op": s.op, "share_a": s.share_a, "share_b": s.share_b}
                                                          for s in shifts]} for k, shifts in self.op_shifts],
        }


def _env_diff(a: PooledCell, b: PooledCell, columns: Sequence[str]) -> str:
    diffs = []
    for col in columns:
        va, vb = a.values(col), b.values(col)
        if set(map(str, va)) != set(map(str, vb)):
            def show(vs: list[Any]) -> str:
                return ",".join("-" if v in (None, "") else str(v) for v in vs)

            diffs.append(f"{col} {show(va)} → {show(vb)}")
    return "; ".join(diffs)


def compare_runs(a_paths: str | Path | Iterable[str | Path], b_paths: str | Path | Iterable[str | Path], *,
                 metrics: str | Sequence[str] | None = None, threshold: float | str = THRESHOLD,
                 alpha: float = ALPHA, ignore: Sequence[str] = (), seed: int = SEED,
                 n_boot: int = N_BOOT, fail_on_shift: float | str | None = None,
                 control: Sequence[str] = ()) -> Comparison:
    """Join two sets of runs on the cell key and compare each metric (see the module docstring);
    with `control` (model names), cells are judged against those models' cells, not the
    median of all cells (against_control)."""
    chosen = parse_metrics(metrics)
    thr = parse_threshold(threshold)
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be between 0 and 1, got {alpha!r}")
    unknown = [c for c in ignore if c not in KEY_COLUMNS]
    if unknown:
        raise UsageError(f"cannot ignore {unknown[0]!r}: not a key column ({', '.join(KEY_COLUMNS)})")
    key_cols = [c for c in KEY_COLUMNS if c not in ignore]
    a, b = load_side(a_paths, "A", key_cols), load_side(b_paths, "B", key_cols)
    common = [k for k in a.cells if k in b.cells]
    only_a = [a.cells[k].key for k in a.cells if k not in b.cells]
    only_b = [b.cells[k].key for k in b.cells if k not in a.cells]
    if not common:
        hint = _near_misses(only_a, only_b)
        raise UsageError(f"no cells in common between {a.dirs[0]} and {b.dirs[0]}"
                         + (f" ({hint[0]})" if hint else ""))

    rows: list[MetricComparison] = []
    not_compared: list[tuple[dict[str, Any], str]] = []
    broken: list[tuple[dict[str, Any], str]] = []
    pvalue_cache: dict[tuple, float] = {}
    for k in common:
        ca, cb = a.cells[k], b.cells[k]
        if set_aside(ca, cb, not_compared, broken):
            continue
        scenario = str(ca.key.get("scenario") or ca.first.get("scenario") or "")
        env = _env_diff(ca, cb, list(ENV_COLUMNS) + list(ignore))
        sa, sb = Samples(ca), Samples(cb)
        notes_cell = [f"{s} {c.stability()}" for s, c in (("A", ca), ("B", cb)) if c.stability()]
        for m in chosen:
            if not m.applies(scenario):
                continue
            ea = estimate(sa, m, row_rng(ca.key, m.name + "A", seed), alpha, n_boot)
            eb = estimate(sb, m, row_rng(ca.key, m.name + "B", seed), alpha, n_boot)
            notes = list(notes_cell)
            if ea is None or eb is None:  # no raw samples: the recorded figures, without a CI
                va, vb = to_float(ca.first.get(m.column)), to_float(cb.first.get(m.column))
                if not (math.isfinite(va) and math.isfinite(vb)):
                    continue
                notes.append("no raw samples: no CI")
                rows.append(MetricComparison(ca.key, m.name, m.unit, m.lower_is_better, va, vb, vb / va if va else math.nan,
                                notes=notes, env_diff=env))
                continue
            row = MetricComparison(ca.key, m.name, m.unit, m.lower_is_better, ea.value, eb.value,
                      eb.value / ea.value if ea.value else math.nan, env_diff=env, notes=notes)
            family = "throughput" if m.kind == "throughput" else "latency"
            xa, xb = ((sa.rates(), sb.rates()) if family == "throughput"
                      else (sa.latency_ms(m.samples), sb.latency_ms(m.samples)))
            row.n_a, row.n_b = int(xa.size), int(xb.size)
            if control:
                row.groups_a, row.groups_b = labelled_round_values(sa, m), labelled_round_values(sb, m)
            windows_beside(row, ca, cb, m)
            if ea.groups is not None and eb.groups is not None:  # rounds or runs: between groups
                row.p = welch_log(ea.groups, eb.groups)
                notes.append(f"CI over {ea.groups.size} (A) and {eb.groups.size} (B) rounds/runs")
            else:
                if (k, family, m.samples) not in pvalue_cache:
                    pvalue_cache[(k, family, m.samples)] = mann_whitney(xa, xb)
                row.p = pvalue_cache[(k, family, m.samples)]
            if max(ea.widened, eb.widened) >= 1.5:
                notes.append(f"requests correlated in time: CI widened x{ea.widened:.1f} (A), "
                             f"x{eb.widened:.1f} (B)")
            if ea.note or eb.note:
                notes.append(f"too few samples for a {m.name} CI (A {row.n_a}, B {row.n_b})")
            if ea.draws is not None and eb.draws is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    row.draws = eb.draws / ea.draws
                row.ci_low, row.ci_high = (float(v) for v in np.percentile(row.draws, [50 * alpha, 100 - 50 * alpha]))
            rows.append(row)

    for row, p_adj in zip(rows, holm([r.p for r in rows])):
        row.p_adj = float(p_adj)
        row.verdict = verdict(row, thr, alpha)
    geomean = _geomean(rows, chosen, alpha)
    if control:
        shift = against_control(rows, set(control), chosen, thr, alpha)
        if not shift:
            raise UsageError(f"--control {','.join(control)}: no cell of that model with raw samples in both runs "
                             f"(models compared: {', '.join(sorted({str(r.key.get('model')) for r in rows}))})")
    else:
        shift = _shift(rows, chosen, alpha, seed)
        for row in rows:
            row.verdict_vs_shift = verdict(row, thr, alpha, shift.get(row.metric, (1.0,))[0])
    source = ",".join(control)
    beside = against_control_windows(rows, chosen, thr, alpha)
    if beside:  # cells measured beside their control's windows are judged on those (run --control)
        shift.update(beside)
        models = sorted({r.control_model for r in rows if r.control_model})
        source = f"{', '.join(models)}, measured beside every cell" + (f"; {source}" if source else "")
    comparison = Comparison(a, b, rows, only_a, only_b, not_compared, broken, geomean, thr, alpha)
    comparison.shift = shift
    comparison.shift_source = source
    comparison.lower_is_better = {m.name: m.lower_is_better for m in chosen}
    comparison.fail_on_shift = parse_threshold(fail_on_shift) if fail_on_shift is not None else None
    comparison.hints = _near_misses(only_a, only_b)
    comparison.different_models = _different_models(a, b, common)
    comparison.op_shifts = [(a.cells[k].key, moved) for k in common
                            if (moved := op_shifts(a.cells[k].first, b.cells[k].first))]
    return comparison


def set_aside(ca: PooledCell, cb: PooledCell, not_compared: list[tuple[dict[str, Any], str]],
              broken: list[tuple[dict[str, Any], str]]) -> bool:
    """True (and the pair listed with the reason) when either side has no usable rows; a cell
    that worked in A and broke in B is also listed as broken, which the gate fails on."""
    if ca.usable and cb.usable:
        return False
    bad = [(s, c) for s, c in (("A", ca), ("B", cb)) if not c.usable]
    reason = "; ".join(f"{s} {c.first.get('status')}: {c.first.get('error') or ''}".rstrip(": ") for s, c in bad)
    not_compared.append((ca.key, reason))
    if ca.usable and any(r.get("status") in BROKEN for r in cb.rows):
        broken.append((ca.key, reason))
    return True


def verdict(row: MetricComparison, threshold: float, alpha: float, shift: float = 1.0) -> str:
    """slower / faster: significant (Holm) AND the whole CI of the cost ratio beyond the
    threshold, the CI taken relative to `shift` (the run-wide shift; 1 for the plain verdict)."""
    if not (math.isfinite(shift) and shift > 0):
        shift = 1.0
    return verdict_of(row.ci_low / shift, row.ci_high / shift, row.p_adj, row.lower_is_better, threshold, alpha)


def against_control(rows: list[MetricComparison], control: set[str], metrics: list[Metric], threshold: float,
                    alpha: float) -> dict[str, tuple[float, float, float, int]]:
    """Judge every cell against an unchanged control measured in both runs (`--control`).

    Within each run, a cell's value in a round is taken relative to the control's value in
    the same round (the same pass over the plan, seconds apart), so what the machine did to
    both in that round cancels; across the two runs the log relative values are compared
    with Welch's interval and test (bench.analysis.intervals.welch_interval), Holm over the
    judged cells, and the usual verdict rule. Cells of the control's scenario are the
    yardstick (several control cells: their mean log value per round). A cell measured in one
    window (no rounds to pair) is taken relative to the control's ratio instead, with the two
    bootstrap distributions drawn independently. The shift reported is the control's own
    B/A. With few cells the median of all of them would hold the changed cell itself; a
    control is a yardstick the change cannot move."""
    shift: dict[str, tuple[float, float, float, int]] = {}
    judged: list[tuple[MetricComparison, tuple[float, float, float, float], str]] = []
    for m in metrics:
        of_m = [r for r in rows if r.metric == m.name]
        ctrl = [r for r in of_m if r.key.get("model") in control and r.ratio > 0 and math.isfinite(r.ratio)]
        if not ctrl:
            continue
        point = math.exp(float(np.median([math.log(r.ratio) for r in ctrl])))
        drawn = [r for r in ctrl if r.draws is not None and np.all(r.draws > 0)]
        logs = np.median(np.log(np.stack([r.draws for r in drawn])), axis=0) if drawn else None
        lo, hi = (np.exp(np.percentile(logs, [50 * alpha, 100 - 50 * alpha])) if logs is not None
                  else (math.nan, math.nan))
        shift[m.name] = (point, float(lo), float(hi), len(ctrl))
        for r in of_m:
            r.verdict_vs_shift = "~"
            if r.key.get("model") in control:
                r.notes.append("the control (--control): not judged")
                continue
            same = [c for c in ctrl if c.key.get("scenario") == r.key.get("scenario")] or ctrl
            da, db = (_relative_logs(getattr(r, g), [getattr(c, g) for c in same]) for g in ("groups_a", "groups_b"))
            fit = intervals.welch_interval(da, db)
            if math.isfinite(fit[1]):
                judged.append((r, fit, f"paired with the control round by round ({da.size} A, {db.size} B)"))
            elif logs is not None and r.draws is not None and r.draws.shape == logs.shape and np.all(r.draws > 0):
                rel = np.log(r.draws) - logs
                n = rel.size
                p = min(1.0, 2 * min(np.sum(rel <= 0) + 1, np.sum(rel >= 0) + 1) / (n + 1))
                lo_r, hi_r = np.exp(np.percentile(rel, [50 * alpha, 100 - 50 * alpha]))
                judged.append((r, (r.ratio / point, float(lo_r), float(hi_r), float(p)), "no rounds to pair"))
    for (r, (ratio, lo, hi, _), how), p_adj in zip(judged, holm([j[1][3] for j in judged])):
        r.verdict_vs_shift = verdict_of(lo, hi, float(p_adj), r.lower_is_better, threshold, alpha)
        r.notes.append(f"against the control: x{ratio:.3f} [{lo:.3f}, {hi:.3f}], p_holm {p_adj:.3g} ({how})")
    return shift


def _relative_logs(groups: dict[tuple[str, int], float], controls: list[dict[tuple[str, int], float]]) -> np.ndarray:
    """log(cell) - mean log(control) in every group (run, round) both were measured in."""
    out = []
    for label, v in groups.items():
        cs = [c[label] for c in controls if label in c]
        if cs and v > 0 and all(x > 0 for x in cs):
            out.append(math.log(v) - float(np.mean(np.log(cs))))
    return np.asarray(out, dtype=np.float64)


SHIFT_MIN_CELLS = 8  # fewer cells: no run-wide shift is estimated (a cell would be its own shift)


def _shift(rows: list[MetricComparison], metrics: list[Metric], alpha: float,
           seed: int) -> dict[str, tuple[float, float, float, int]]:
    """The run-wide shift per metric: the median log-ratio B/A over the cells, its CI by
    resampling the cells. Separate runs cannot tell a slower machine from a change that
    touches every cell; the gate judges each cell relative to this."""
    out = {}
    for m in metrics:
        logs = np.array([math.log(r.ratio) for r in rows if r.metric == m.name and r.ratio > 0
                         and math.isfinite(r.ratio)])
        if logs.size < SHIFT_MIN_CELLS:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(m.name.encode())])
        boot = np.median(logs[rng.integers(0, logs.size, (2000, logs.size))], axis=1)
        lo, hi = np.exp(np.percentile(boot, [50 * alpha, 100 - 50 * alpha]))
        out[m.name] = (float(math.exp(np.median(logs))), float(lo), float(hi), int(logs.size))
    return out


def _geomean(rows: list[MetricComparison], metrics: list[Metric], alpha: float) -> dict[str, tuple[float, float, float, int]]:
    """Geometric mean of B/A over the cells of each metric; its CI from the rows' bootstrap replicates."""
    out = {}
    for m in metrics:
        chosen = [r for r in rows if r.metric == m.name and r.draws is not None and r.ratio > 0
                  and np.all(r.draws > 0)]
        if not chosen:
            continue
        point = float(np.exp(np.mean([math.log(r.ratio) for r in chosen])))
        logs = np.mean([np.log(r.draws) for r in chosen], axis=0)
        lo, hi = np.exp(np.percentile(logs, [50 * alpha, 100 - 50 * alpha]))
        out[m.name] = (point, float(lo), float(hi), len(chosen))
    return out


def _different_models(a: Side, b: Side, common: list[tuple]) -> list[tuple[dict[str, Any], str, str]]:
    """Cells measured on different weights in A and B (their model_fingerprint columns differ)."""
    out = []
    for k in common:
        fa = sorted(str(v) for v in a.cells[k].values("model_fingerprint") if v)
        fb = sorted(str(v) for v in b.cells[k].values("model_fingerprint") if v)
        if fa and fb and fa != fb:
            out.append((a.cells[k].key, ",".join(fa), ",".join(fb)))
    return out


def _near_misses(only_a: list[dict[str, Any]], only_b: list[dict[str, Any]]) -> list[str]:
    """Hints such as 'cells differ only in compiler_args: add --ignore-key compiler_args'."""
    cols: dict[str, int] = {}
    for ka in only_a:
        for kb in only_b:
            diff = [c for c in ka if ka.get(c) != kb.get(c)]
            if len(diff) == 1:
                cols[diff[0]] = cols.get(diff[0], 0) + 1
    return [f"{n} cells differ only in {c}: add --ignore-key {c} to compare them" for c, n in cols.items()]
