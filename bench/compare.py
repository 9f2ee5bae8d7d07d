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
  distribution-free interval (`bench.analysis.stats.quantile_ci_ranks`) is unbounded at this sample
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
  `bench.analysis.stats.throughput_summary`) is cut into K equal intervals, K = min(20,
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

Run vs published (`compare_reference`) and pivots (`pivot`) are further down.
"""

from __future__ import annotations

import csv
import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.results import KEY_COLUMNS, load_samples, read_meta, read_rows, run_dirs

N_BOOT = 4000  # bootstrap replicates per row
SEED = 20240601  # fixed: the same inputs give the same CIs
ALPHA = 0.05
THRESHOLD = 0.05
MIN_INTERVALS = 5  # throughput: fewer batch-means intervals than this gives no CI
MAX_INTERVALS = 20
PER_INTERVAL = 8  # throughput: completions per interval at least this (when K < MAX)
USABLE = ("ok", "unstable")  # statuses whose figures can be compared
BROKEN = ("failed", "inaccurate")
# Environment facts (and measurement conditions) that make two figures not the same
# experiment when they differ.
ENV_COLUMNS = ("instance_type", "accelerator", "device_name", "cpu_model", "torch",
               "torch_neuronx", "neuronx_cc", "transformers", "keep_freed_memory")


@dataclass(frozen=True)
class Metric:
    """A compared figure: its results column, unit, and how to estimate it from samples."""

    name: str
    column: str
    unit: str
    kind: str  # "quantile" | "mean" | "throughput"
    q: float = 0.5
    lower_is_better: bool = True
    samples: str = "latency_ns"  # the raw sample array the estimate is computed from
    scenarios: tuple[str, ...] = ()  # only these scenarios (empty: all)

    def applies(self, scenario: str) -> bool:
        if self.scenarios and scenario not in self.scenarios:
            return False
        # In SingleStream throughput is batch / latency: a duplicate of the latency rows.
        return self.kind != "throughput" or scenario != "latency"


METRICS: dict[str, Metric] = {
    "p50": Metric("p50", "latency_ms_p50", "ms", "quantile", 0.50),
    "p90": Metric("p90", "latency_ms_p90", "ms", "quantile", 0.90),
    "p95": Metric("p95", "latency_ms_p95", "ms", "quantile", 0.95),
    "p99": Metric("p99", "latency_ms_p99", "ms", "quantile", 0.99),
    "mean": Metric("mean", "latency_ms_mean", "ms", "mean"),
    "throughput": Metric("throughput", "throughput_avg", "samples/s", "throughput", lower_is_better=False),
    # generate (LLM decoding): p50 of time to first token and of time per output token
    "ttft": Metric("ttft", "ttft_ms_p50", "ms", "quantile", 0.50, samples="ttft_ns", scenarios=("generate",)),
    "tpot": Metric("tpot", "tpot_ms_p50", "ms", "quantile", 0.50, samples="tpot_ns", scenarios=("generate",)),
}
DEFAULT_METRICS = ("p50", "p99", "throughput")
_METRIC_ALIASES = {"latency": "p50", "median": "p50", "tput": "throughput", "throughput_avg": "throughput",
                   "latency_ms_p50": "p50", "latency_ms_p90": "p90", "latency_ms_p95": "p95",
                   "latency_ms_p99": "p99", "latency_ms_mean": "mean"}


def parse_metrics(text: str | Sequence[str] | None) -> list[Metric]:
    """'p50,p99,throughput' -> Metrics; unknown names are a UsageError."""
    if text is None:
        return [METRICS[m] for m in DEFAULT_METRICS]
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[Metric] = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        name = _METRIC_ALIASES.get(item, item)
        if name not in METRICS:
            raise UsageError(f"unknown metric {item!r} (choose from {', '.join(METRICS)})")
        if METRICS[name] not in out:
            out.append(METRICS[name])
    if not out:
        raise UsageError("--metric: empty list")
    return out


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


# -- loading and pooling ------------------------------------------------------------------


def _norm(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


@dataclass
class PooledCell:
    """One cell of one side: the rows (one per run) that share a key."""

    key: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)  # each with "_run_dir"

    @property
    def usable(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("status") in USABLE]

    @property
    def first(self) -> dict[str, Any]:
        return (self.usable or self.rows)[0]

    def values(self, column: str) -> list[Any]:
        out = []
        for r in self.rows:
            v = _norm(r.get(column))
            if v not in out:
                out.append(v)
        return out

    def stability(self) -> str:
        """'unstable: IQR is 25% of the median' when any pooled row is unstable, else ''."""
        notes = [str(r.get("stability") or r.get("error") or "") for r in self.usable if r.get("status") == "unstable"]
        notes = [n for n in dict.fromkeys(notes) if n]
        return ("unstable: " + "; ".join(notes)) if notes else ("unstable" if any(
            r.get("status") == "unstable" for r in self.usable) else "")


@dataclass
class Side:
    """One side of a comparison: a set of runs, their cells indexed by key."""

    label: str
    dirs: list[Path]
    metas: list[dict[str, Any]]
    cells: dict[tuple, PooledCell]

    def describe(self) -> str:
        ids = [m.get("run_id", d.name) for m, d in zip(self.metas, self.dirs)]
        env = self.metas[0].get("environment", {}) if self.metas else {}
        commit = str(env.get("git_commit") or "")[:9]
        bits = [", ".join(ids) if len(ids) <= 3 else f"{len(ids)} runs"]
        if commit:
            bits.append(f"commit {commit}{'+dirty' if env.get('git_dirty') else ''}")
        if env.get("hostname"):
            bits.append(f"host {env['hostname']}")
        return f"{self.label}: " + ", ".join(bits)


def load_side(paths: str | Path | Iterable[str | Path], label: str = "A",
              key_columns: Sequence[str] = KEY_COLUMNS) -> Side:
    """Read the runs under `paths` and index their rows by cell key (pooling repeats)."""
    dirs = run_dirs(paths)
    metas = [read_meta(d) for d in dirs]
    cells: dict[tuple, PooledCell] = {}
    full_keys: dict[tuple, set] = {}
    for d in dirs:
        for row in read_rows(d):
            row = dict(row, _run_dir=str(d))
            key = tuple(_norm(row.get(c)) for c in key_columns)
            cell = cells.setdefault(key, PooledCell({c: _norm(row.get(c)) for c in key_columns}))
            cell.rows.append(row)
            full_keys.setdefault(key, set()).add(tuple(_norm(row.get(c)) for c in KEY_COLUMNS))
    for key, fulls in full_keys.items():
        if len(fulls) > 1:
            dropped = [c for c in KEY_COLUMNS if c not in key_columns]
            raise UsageError(f"{label}: leaving {', '.join(dropped)} out of the key makes different cells "
                             f"collide ({cell_label(cells[key].key)}): compare fewer cells or ignore fewer columns")
    return Side(label, dirs, metas, cells)


def cell_label(key: dict[str, Any]) -> str:
    """'tiny-bert cpu/jit fp32 latency b4 seq32' (the parts that are present)."""
    parts = [key.get("model")]
    if key.get("target") is not None or key.get("compiler") is not None:
        parts.append("/".join(str(p) for p in (key.get("target"), key.get("compiler")) if p is not None))
    parts += [key.get("dtype"), key.get("scenario")]
    if key.get("batch_size") is not None:
        parts.append(f"b{key['batch_size']}")
    parts.append(shape_label(key))
    if key.get("compiler_args"):
        parts.append(f"[{key['compiler_args']}]")
    n, w = key.get("n_models"), key.get("workers_per_model")
    if (n or 1) > 1 or (w or 1) > 1:
        parts.append(f"{n}x{w}")
    if key.get("rate_qps"):
        parts.append(f"{key['rate_qps']}qps")
    return " ".join(str(p) for p in parts if p not in (None, ""))


def shape_label(row: dict[str, Any]) -> str:
    if _norm(row.get("seq_len")) is not None:
        return f"seq{int(row['seq_len'])}"
    if _norm(row.get("image_size")) is not None:
        return f"{int(row['image_size'])}px"
    return ""


# -- estimators --------------------------------------------------------------------------


class _Samples:
    """Raw samples of a pooled cell, loaded once and cached."""

    def __init__(self, cell: PooledCell):
        self.cell = cell
        self._sorted: dict[str, np.ndarray | None] = {}
        self._parts: dict[str, list[np.ndarray]] = {}
        self._loaded: list[tuple[dict[str, Any], dict[str, np.ndarray]]] | None = None
        self._rates: np.ndarray | None | bool = False

    def _load(self) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
        if self._loaded is None:
            out = []
            for r in self.cell.usable:
                try:
                    out.append((r, load_samples(r["_run_dir"], r["cell_id"])))
                except (OSError, KeyError, ValueError):
                    out = []
                    break
            self._loaded = out
        return self._loaded

    def latency_ms(self, key: str = "latency_ns") -> np.ndarray | None:
        """Sorted pooled values of a per-request sample array, in ms; None without raw samples."""
        if key not in self._sorted:
            parts = self.latency_parts(key)
            self._sorted[key] = np.sort(np.concatenate(parts)) if parts else None
        return self._sorted[key]

    def latency_parts(self, key: str = "latency_ns") -> list[np.ndarray]:
        """Per-request values in ms in the order the requests started, one array per pooled run."""
        if key not in self._parts:
            self._parts[key] = [s[key].astype(np.float64) / 1e6 for _, s in self._load()
                                if key in s and len(s[key])]
        return self._parts[key]

    def rates(self) -> np.ndarray | None:
        """Batch-means throughput: samples/s in each of K equal intervals of the steady window."""
        if self._rates is False:
            from bench.analysis.stats import steady_window

            parts = []
            for row, s in self._load():
                if "start_ns" not in s or "latency_ns" not in s or not len(s["start_ns"]):
                    continue
                start = s["start_ns"].astype(np.int64)
                end = start + s["latency_ns"].astype(np.int64)
                trim = float(row.get("trim_s") or 0.0)
                t0, t1 = steady_window(start, end, trim)
                inside = end[(end >= t0) & (end < t1)]
                k = min(MAX_INTERVALS, inside.size // PER_INTERVAL)
                if k < MIN_INTERVALS or t1 <= t0:
                    continue
                counts, _ = np.histogram(inside, bins=k, range=(t0, t1))
                width_s = (t1 - t0) / 1e9 / k
                parts.append(counts * float(row.get("batch_size") or 1) / width_s)
            self._rates = np.concatenate(parts) if parts else None
        return self._rates  # type: ignore[return-value]


def _quantile_draws(x: np.ndarray, q: float, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Bootstrap replicates of the q-quantile (k-th order statistic) of sorted x, drawn exactly."""
    from scipy import stats as sps

    n = x.size
    k = min(n, max(1, math.ceil(n * q - 1e-9)))
    cdf = sps.binom.sf(k - 1, n, np.arange(1, n + 1) / n)  # P(k-th of a resample <= x(j))
    idx = np.searchsorted(cdf, rng.random(n_boot), side="left")
    return x[np.minimum(idx, n - 1)]


def _bounded(n: int, q: float, alpha: float) -> bool:
    from bench.analysis.stats import quantile_ci_ranks

    lo, hi = quantile_ci_ranks(n, q, 1 - alpha)
    return lo is not None and hi is not None


@dataclass
class Estimate:
    value: float
    draws: np.ndarray | None  # bootstrap replicates of the value (None: no CI)
    note: str = ""
    widened: float = 1.0  # factor applied to the spread for correlation in time


DESIGN_BATCHES = 20  # batches for the long-run variance (time correlation) of a statistic


def design_effect(parts: list[np.ndarray], n_batches: int = DESIGN_BATCHES) -> float:
    """Long-run variance / iid variance of a time-ordered series, by batch means (>= 1).

    Requests measured back to back are not independent: a neighbour, a frequency change
    or a GC pause slows a run of consecutive requests. The variance of a mean (or of a
    quantile, through the indicator x <= quantile) then exceeds the iid formula by this
    factor; it is estimated from the means of `n_batches` contiguous batches of each run.
    Returns 1 for short series (fewer than 20 values per batch).
    """
    n = sum(len(p) for p in parts)
    if n < n_batches * 20:
        return 1.0
    allv = np.concatenate(parts).astype(np.float64)
    var = float(allv.var())
    if var <= 0:
        return 1.0
    means, sizes = [], []
    for p in parts:
        for chunk in np.array_split(np.asarray(p, dtype=np.float64), max(1, round(n_batches * len(p) / n))):
            if len(chunk):
                means.append(chunk.mean())
                sizes.append(len(chunk))
    if len(means) < 2:
        return 1.0
    m, w = np.asarray(means), np.asarray(sizes, dtype=np.float64)
    long_run = float(np.sum(w * (m - allv.mean()) ** 2) / (len(m) - 1))
    return max(1.0, long_run / var)


def _widen(draws: np.ndarray, factor: float) -> np.ndarray:
    """Scale the spread of positive bootstrap replicates about their median, in log space."""
    if factor <= 1.0:
        return draws
    center = float(np.median(draws))
    if center <= 0 or np.any(draws <= 0):
        return center + (draws - center) * factor
    return center * (draws / center) ** factor


def estimate(samples: _Samples, metric: Metric, rng: np.random.Generator, alpha: float = ALPHA,
             n_boot: int = N_BOOT) -> Estimate | None:
    """The metric's value from raw samples and its bootstrap replicates; None without samples."""
    if metric.kind == "throughput":
        rates = samples.rates()
        if rates is None:
            return None
        draws = rates[rng.integers(0, rates.size, (n_boot, rates.size))].mean(axis=1)
        return Estimate(float(rates.mean()), draws)
    x = samples.latency_ms(metric.samples)
    if x is None or not x.size:
        return None
    parts = samples.latency_parts(metric.samples)
    if metric.kind == "mean":
        if x.size < 2:
            return Estimate(float(x.mean()), None)
        widen = math.sqrt(design_effect(parts))
        se = widen * x.std(ddof=1) / math.sqrt(x.size)
        return Estimate(float(x.mean()), x.mean() + se * rng.standard_normal(n_boot), widened=widen)
    value = float(np.percentile(x, metric.q * 100))
    if not _bounded(x.size, metric.q, alpha):
        return Estimate(value, None, f"too few samples for a {metric.name} CI (n={x.size})")
    widen = math.sqrt(design_effect([p <= value for p in parts]))
    return Estimate(value, _widen(_quantile_draws(x, metric.q, rng, n_boot), widen), widened=widen)


def _mann_whitney(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import mannwhitneyu

    if a.size < 2 or b.size < 2:
        return float("nan")
    if np.all(a == a[0]) and np.all(b == a[0]):
        return 1.0
    method = "asymptotic" if a.size + b.size > 60 else "auto"
    return float(mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN); controls the family-wise error rate."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        m = order.size
        adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(adjusted, 1.0)
    return out


def _rng(key: dict[str, Any], metric: str, seed: int) -> np.random.Generator:
    """A generator per row, so a row's CI does not depend on which other rows are compared."""
    return np.random.default_rng([seed, zlib.crc32(f"{sorted(key.items())}|{metric}".encode())])


# -- run vs run --------------------------------------------------------------------------


@dataclass
class Row:
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
    notes: list[str] = field(default_factory=list)
    env_diff: str = ""
    n_a: int = 0
    n_b: int = 0
    draws: np.ndarray | None = field(default=None, repr=False)

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
                 p_value=self.p, p_holm=self.p_adj, verdict=self.verdict, n_a=self.n_a, n_b=self.n_b,
                 env_diff=self.env_diff, notes="; ".join(self.notes))
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass
class Comparison:
    a: Side
    b: Side
    rows: list[Row]
    only_a: list[dict[str, Any]]
    only_b: list[dict[str, Any]]
    not_compared: list[tuple[dict[str, Any], str]]  # (key, reason)
    broken: list[tuple[dict[str, Any], str]]  # worked in A, failed or inaccurate in B
    geomean: dict[str, tuple[float, float, float, int]]  # metric -> (ratio, lo, hi, cells)
    threshold: float
    alpha: float
    hints: list[str] = field(default_factory=list)

    @property
    def slower(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "slower"]

    @property
    def faster(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "faster"]

    @property
    def regressions(self) -> int:
        """What the CI gate fails on: significant slowdowns beyond the threshold, newly broken cells."""
        return len(self.slower) + len(self.broken)

    def summary(self) -> str:
        n = len(self.rows)
        same = n - len(self.slower) - len(self.faster)
        text = (f"{n} rows: {len(self.slower)} slower, {len(self.faster)} faster, {same} ~ "
                f"(threshold {self.threshold:.1%}, Holm-adjusted alpha {self.alpha:g})")
        if self.broken:
            text += f"; {len(self.broken)} cells broken in {self.b.label}"
        return text

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
            "summary": self.summary(), "regressions": self.regressions,
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
                 n_boot: int = N_BOOT) -> Comparison:
    """Join two sets of runs on the cell key and compare each metric (see the module docstring)."""
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

    rows: list[Row] = []
    not_compared: list[tuple[dict[str, Any], str]] = []
    broken: list[tuple[dict[str, Any], str]] = []
    pvalue_cache: dict[tuple, float] = {}
    for k in common:
        ca, cb = a.cells[k], b.cells[k]
        if not ca.usable or not cb.usable:
            bad = [(s, c) for s, c in (("A", ca), ("B", cb)) if not c.usable]
            reason = "; ".join(f"{s} {c.first.get('status')}: {c.first.get('error') or ''}".rstrip(": ")
                               for s, c in bad)
            not_compared.append((ca.key, reason))
            if ca.usable and any(r.get("status") in BROKEN for r in cb.rows):
                broken.append((ca.key, reason))
            continue
        scenario = str(ca.key.get("scenario") or ca.first.get("scenario") or "")
        env = _env_diff(ca, cb, list(ENV_COLUMNS) + list(ignore))
        sa, sb = _Samples(ca), _Samples(cb)
        notes_cell = [f"{s} {c.stability()}" for s, c in (("A", ca), ("B", cb)) if c.stability()]
        for m in chosen:
            if not m.applies(scenario):
                continue
            ea = estimate(sa, m, _rng(ca.key, m.name + "A", seed), alpha, n_boot)
            eb = estimate(sb, m, _rng(ca.key, m.name + "B", seed), alpha, n_boot)
            notes = list(notes_cell)
            if ea is None or eb is None:  # no raw samples: the recorded figures, without a CI
                va, vb = _num(ca.first.get(m.column)), _num(cb.first.get(m.column))
                if not (math.isfinite(va) and math.isfinite(vb)):
                    continue
                notes.append("no raw samples: no CI")
                rows.append(Row(ca.key, m.name, m.unit, m.lower_is_better, va, vb, vb / va if va else math.nan,
                                notes=notes, env_diff=env))
                continue
            row = Row(ca.key, m.name, m.unit, m.lower_is_better, ea.value, eb.value,
                      eb.value / ea.value if ea.value else math.nan, env_diff=env, notes=notes)
            family = "throughput" if m.kind == "throughput" else "latency"
            xa, xb = ((sa.rates(), sb.rates()) if family == "throughput"
                      else (sa.latency_ms(m.samples), sb.latency_ms(m.samples)))
            row.n_a, row.n_b = int(xa.size), int(xb.size)
            if (k, family, m.samples) not in pvalue_cache:
                pvalue_cache[(k, family, m.samples)] = _mann_whitney(xa, xb)
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
        row.verdict = _verdict(row, thr, alpha)
    geomean = _geomean(rows, chosen, alpha)
    comparison = Comparison(a, b, rows, only_a, only_b, not_compared, broken, geomean, thr, alpha)
    comparison.hints = _near_misses(only_a, only_b)
    return comparison


def _num(v: Any) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _verdict(row: Row, threshold: float, alpha: float) -> str:
    if not (math.isfinite(row.p_adj) and row.p_adj < alpha):
        return "~"
    if not (math.isfinite(row.ci_low) and math.isfinite(row.ci_high)) or row.ci_low <= 0:
        return "~"
    lo, hi = (row.ci_low, row.ci_high) if row.lower_is_better else (1 / row.ci_high, 1 / row.ci_low)
    factor = 1.0 + threshold
    if lo > factor:
        return "slower"
    if hi < 1.0 / factor:
        return "faster"
    return "~"


def _geomean(rows: list[Row], metrics: list[Metric], alpha: float) -> dict[str, tuple[float, float, float, int]]:
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


def _near_misses(only_a: list[dict[str, Any]], only_b: list[dict[str, Any]]) -> list[str]:
    """Hints such as 'cells differ only in compiler_args: add --ignore-key compiler_args'."""
    cols: dict[str, int] = {}
    for ka in only_a:
        for kb in only_b:
            diff = [c for c in ka if ka.get(c) != kb.get(c)]
            if len(diff) == 1:
                cols[diff[0]] = cols.get(diff[0], 0) + 1
    return [f"{n} cells differ only in {c}: add --ignore-key {c} to compare them" for c, n in cols.items()]


# -- run vs published figures ------------------------------------------------------------

# Accepted spellings of reference-table columns (after lower-casing, and turning spaces,
# dashes, slashes and brackets into underscores).
REFERENCE_ALIASES: dict[str, tuple[str, ...]] = {
    "model": ("model", "model_name", "name", "model_id"),
    "instance": ("instance", "instance_type", "inst_type", "instance_name"),
    "batch_size": ("batch_size", "batch", "bs"),
    "seq_len": ("seq_len", "sequence_length", "seqlen", "seq", "sequence_len"),
    "image_size": ("image_size", "img_size", "resolution", "image_resolution"),
    "precision": ("dtype", "auto_cast", "autocast", "precision", "data_type", "cast"),
    "target": ("target", "device"),
    "scenario": ("scenario", "optimized_for", "mode"),
    "throughput": ("throughput", "throughput_avg", "samples_per_s", "samples_s", "throughput_samples_s",
                   "inf_s", "throughput_inf_s", "throughput_seq_s", "throughput_img_s"),
    "p50": ("p50", "p50_ms", "latency_p50", "latency_ms_p50", "latency_p50_ms", "p50_latency_ms"),
    "p99": ("p99", "p99_ms", "latency_p99", "latency_ms_p99", "latency_p99_ms", "p99_latency_ms"),
    "sdk_version": ("sdk_version", "sdk", "neuron_sdk", "neuron_sdk_version"),
    "source_url": ("source_url", "source", "url"),
}


def _column_name(text: str) -> str:
    name = re.sub(r"[\s\-/()\[\]]+", "_", text.strip().lower()).strip("_")
    return re.sub(r"_+", "_", name)


def find_reference(name_or_path: str | Path) -> Path:
    """A CSV path, or a name in results/reference/ ('neuron-published' -> neuron-published.csv)."""
    from bench.paths import reference_dir

    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = reference_dir() / f"{name_or_path}.csv"
    if candidate.is_file():
        return candidate
    if path.suffix or "/" in str(name_or_path):
        raise UsageError(f"reference table not found: {name_or_path}")
    known = sorted(p.stem for p in reference_dir().glob("*.csv")) if reference_dir().is_dir() else []
    raise UsageError(f"unknown reference {str(name_or_path)!r} (known: {', '.join(known) or 'none'}; "
                     "or give a CSV path)")


def load_reference(name_or_path: str | Path) -> list[dict[str, Any]]:
    """Read a published-figures CSV into rows with canonical names (see REFERENCE_ALIASES).

    Tolerant by design: column names are matched case-insensitively with their usual
    spellings (`instance_type` or `instance`, `dtype` or `auto-cast`, `p50 (ms)` ...);
    unknown columns are kept as they are; numbers may carry thousands separators; lines
    starting with '#' are comments. Only `model` is required, plus at least one of
    throughput / p50 / p99. Latencies are in ms, throughput in samples (inputs) per second.
    """
    path = find_reference(name_or_path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read reference table {path}: {exc}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    if not reader.fieldnames:
        raise UsageError(f"{path}: empty reference table")
    canonical = {}
    for raw in reader.fieldnames:
        name = _column_name(raw or "")
        for canon, aliases in REFERENCE_ALIASES.items():
            if name in aliases and canon not in canonical.values():
                canonical[raw] = canon
                break
        else:
            canonical[raw] = name
    if "model" not in canonical.values():
        raise UsageError(f"{path}: a reference table needs a 'model' column (has: {', '.join(reader.fieldnames)})")
    if not {"throughput", "p50", "p99"} & set(canonical.values()):
        raise UsageError(f"{path}: a reference table needs a throughput, p50 or p99 column")
    out = []
    for n, rec in enumerate(reader, 2):
        row: dict[str, Any] = {"_line": n, "_source": str(path)}
        for raw, value in rec.items():
            if raw is None:
                continue
            row[canonical.get(raw, raw)] = (value or "").strip()
        for col in ("batch_size", "seq_len", "image_size"):
            row[col] = _int_or_none(row.get(col))
        for col in ("throughput", "p50", "p99"):
            row[col] = _float_or_nan(row.get(col))
        if row.get("model"):
            out.append(row)
    return out


def _int_or_none(v: Any) -> int | None:
    f = _float_or_nan(v)
    return int(f) if math.isfinite(f) else None


def _float_or_nan(v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(str(v).replace(",", "").replace("_", "").strip())
    except ValueError:
        return math.nan


def _model_name(name: Any) -> str:
    return str(name).strip().lower().rsplit("/", 1)[-1]


def precision_label(row: dict[str, Any]) -> str:
    """The effective precision of a run row: 'matmult-bf16' when neuronx-cc auto-casts, else dtype."""
    args = str(row.get("compiler_args") or "")
    mode = re.search(r"--auto-cast[= ](\w+)", args)
    kind = re.search(r"--auto-cast-type[= ](\w+)", args)
    if mode and mode.group(1) != "none":
        return f"{mode.group(1)}-{kind.group(1) if kind else 'bf16'}".lower()
    return str(row.get("dtype") or "fp32").lower()


def _norm_precision(text: Any) -> str:
    t = re.sub(r"[\s_]+", "-", str(text).strip().lower())
    t = t.replace("auto-cast-", "").replace("autocast-", "")
    if t in ("none", "fp32-none", "float32"):
        return "fp32"
    return {"bfloat16": "bf16", "float16": "fp16", "matmul-bf16": "matmult-bf16"}.get(t, t)


@dataclass
class RefRow:
    key: dict[str, Any]
    ref: dict[str, Any] | None
    mismatches: list[str]
    run: dict[str, float]  # throughput, p50, p99 of the run
    run_ci: dict[str, tuple[float, float]]
    stability: str = ""

    @property
    def comparable(self) -> bool:
        return self.ref is not None and not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        ref = self.ref or {}
        d = dict(self.key)
        d["precision"] = self.key.get("precision")
        for m in ("throughput", "p50", "p99"):
            run, pub = self.run.get(m, math.nan), _num(ref.get(m))
            d[f"{m}_run"] = run
            d[f"{m}_published"] = pub
            d[f"{m}_ratio"] = run / pub if pub and math.isfinite(pub) and math.isfinite(run) else math.nan
        d.update(instance_published=ref.get("instance"), sdk_version=ref.get("sdk_version"),
                 source_url=ref.get("source_url"), comparable=self.comparable,
                 not_comparable=", ".join(self.mismatches), stability=self.stability)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def compare_reference(run_paths: str | Path | Iterable[str | Path], reference: str | Path,
                      seed: int = SEED) -> tuple[list[RefRow], list[dict[str, Any]]]:
    """Each run cell against the published figure for the same model and batch size.

    Returns (rows, cells without any published figure for their model and batch size).
    A figure is comparable when instance type, target (default `neuron`), input shape and
    precision (dtype, or neuronx-cc --auto-cast mode and type) match wherever the table
    states them; otherwise the row is marked "not comparable" with the differences named.
    When the table states a scenario, a figure for another scenario is not comparable either.
    Among several candidates the one with the fewest differences is shown.
    """
    refs = load_reference(reference)
    side = load_side(run_paths, "run")
    rows: list[RefRow] = []
    missing: list[dict[str, Any]] = []
    by_model: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in refs:
        by_model.setdefault((_model_name(r["model"]), r.get("batch_size")), []).append(r)
    for cell in side.cells.values():
        if not cell.usable:
            continue
        first = cell.first
        key = dict(cell.key, precision=precision_label(first), instance=first.get("instance_type") or "")
        cands = by_model.get((_model_name(key["model"]), key.get("batch_size")), []) + \
            by_model.get((_model_name(key["model"]), None), [])
        if not cands:
            missing.append(cell.key)
            continue
        scored = sorted(((_mismatches(key, first, c), i, c) for i, c in enumerate(cands)), key=lambda t: (len(t[0]), t[1]))
        mism, _, best = scored[0]
        run, run_ci = _run_figures(cell, seed)
        rows.append(RefRow(key, best, mism, run, run_ci, cell.stability()))
    return rows, missing


def _mismatches(key: dict[str, Any], row: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    out = []
    inst = str(ref.get("instance") or "")
    if inst and inst.lower() != str(key.get("instance") or "").lower():
        out.append(f"instance {key.get('instance') or 'not EC2'} vs published {inst}")
    scenario = str(ref.get("scenario") or "").lower()
    if scenario and scenario != str(key.get("scenario") or "").lower():
        out.append(f"scenario {key.get('scenario')} vs published {scenario}")
    target = str(ref.get("target") or "neuron").lower()
    if target != str(key.get("target") or "").lower():
        out.append(f"target {key.get('target')} vs published {target}")
    for col, what in (("seq_len", "seq"), ("image_size", "image")):
        if ref.get(col) is not None and ref.get(col) != key.get(col):
            out.append(f"{what} {key.get(col)} vs published {ref.get(col)}")
    if ref.get("precision"):
        pub = _norm_precision(ref["precision"])
        if pub != _norm_precision(key["precision"]):
            out.append(f"precision {key['precision']} vs published {pub}")
    return out


def _run_figures(cell: PooledCell, seed: int) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    samples = _Samples(cell)
    run: dict[str, float] = {}
    ci: dict[str, tuple[float, float]] = {}
    for name in ("throughput", "p50", "p99"):
        m = METRICS[name]
        e = estimate(samples, m, _rng(cell.key, name, seed))
        if e is None:
            run[name] = _num(cell.first.get(m.column))
            continue
        run[name] = e.value
        if e.draws is not None:
            lo, hi = np.percentile(e.draws, [2.5, 97.5])
            ci[name] = (float(lo), float(hi))
    return run, ci


# -- pivot: one row per model/batch, one column per target / version / instance ----------

_TARGET_COLUMNS = ("target", "compiler", "compiler_args", "n_models", "workers_per_model", "threads_per_worker")


def _by_spec(by: str) -> tuple[str, Any, tuple[str, ...]]:
    """(title, label function, key columns moved from the rows to the columns)."""
    by = by.strip().lower()
    if by == "target":
        return "target", lambda r: f"{r.get('target')}/{r.get('compiler')}", _TARGET_COLUMNS
    if by == "sdk":
        def sdk(r: dict[str, Any]) -> str:
            if r.get("neuronx_cc"):
                return f"neuronx-cc {r['neuronx_cc']}"
            if r.get("torch_neuronx"):
                return f"torch-neuronx {r['torch_neuronx']}"
            return f"torch {r.get('torch') or '?'}"

        return "sdk", sdk, ()
    if by == "instance":
        return "instance", lambda r: str(r.get("instance_type") or r.get("device_name") or r.get("cpu_model")
                                         or r.get("hostname") or "?"), _TARGET_COLUMNS
    if by == "run":
        return "run", lambda r: str(r.get("run_id")), ()
    from bench.results import COLUMNS

    if by in COLUMNS:
        return by, lambda r: f"{by}={_norm(r.get(by))}", (by,) if by in KEY_COLUMNS else ()
    raise UsageError(f"unknown --by {by!r} (target, sdk, instance, run, or a results column)")


@dataclass
class Pivot:
    metric: Metric
    by: str
    columns: list[str]
    rows: list[tuple[dict[str, Any], dict[str, tuple[float, str]]]]  # (row key, column -> (value, stability))

    def as_records(self) -> list[dict[str, Any]]:
        out = []
        for key, cells in self.rows:
            for col, (value, note) in cells.items():
                out.append(dict(key, metric=self.metric.name, unit=self.metric.unit, column=col,
                                value=value, stability=note))
        return out


def pivot(run_paths: str | Path | Iterable[str | Path], by: str,
          metrics: str | Sequence[str] | None = None) -> list[Pivot]:
    """One table per metric: rows = cells without the `by` columns, columns = `by` labels.

    The recorded figures of each row are shown (no pooling); when two runs give the same
    row and column, the later one wins. Columns keep the order in which they first appear,
    so the first run given is the baseline of the relative figures.
    """
    title, label_of, moved = _by_spec(by)
    dirs = run_dirs(run_paths)
    records: list[dict[str, Any]] = []
    for d in dirs:
        read_meta(d)
        records.extend(r for r in read_rows(d) if r.get("status") in USABLE)
    if not records:
        raise UsageError("no usable rows (status ok or unstable) in the given runs")
    row_cols = [c for c in KEY_COLUMNS if c not in moved]
    # A label that maps to several values of the moved columns gets them appended.
    base_labels: dict[str, set] = {}
    for r in records:
        base_labels.setdefault(label_of(r), set()).add(tuple(_norm(r.get(c)) for c in moved))
    def column_of(r: dict[str, Any]) -> str:
        base = label_of(r)
        variants = base_labels[base]
        if len(variants) <= 1:
            return base
        extra = [f"{c}={_norm(r.get(c))}" for i, c in enumerate(moved)
                 if len({v[i] for v in variants}) > 1 and c not in ("target", "compiler")]
        if title != "target" and any(len({v[i] for v in variants}) > 1 for i, c in enumerate(moved)
                                     if c in ("target", "compiler")):
            extra.insert(0, f"{r.get('target')}/{r.get('compiler')}")
        return " ".join([base, *extra])

    out = []
    for m in parse_metrics(metrics):
        columns: list[str] = []
        table: dict[tuple, tuple[dict[str, Any], dict[str, tuple[float, str]]]] = {}
        for r in records:
            if not m.applies(str(r.get("scenario"))):
                continue
            value = _num(r.get(m.column))
            if not math.isfinite(value):
                continue
            col = column_of(r)
            if col not in columns:
                columns.append(col)
            k = tuple(_norm(r.get(c)) for c in row_cols)
            entry = table.setdefault(k, ({c: _norm(r.get(c)) for c in row_cols}, {}))
            note = f"unstable: {r.get('stability') or r.get('error') or ''}".rstrip(": ") \
                if r.get("status") == "unstable" else ""
            entry[1][col] = (value, note)
        if table:
            out.append(Pivot(m, title, columns, list(table.values())))
    if not out:
        raise UsageError("nothing to pivot: no row has the requested metrics")
    return out


# -- rendering ---------------------------------------------------------------------------


def fmt_value(v: float, unit: str = "") -> str:
    """3 significant figures (at least integer digits), with the unit."""
    if v is None or not math.isfinite(v):
        return ""
    if v == 0:
        text = "0"
    else:
        digits = max(0, 2 - int(math.floor(math.log10(abs(v)))))
        text = f"{v:.{digits}f}"
    return f"{text} {unit}".strip() if unit and unit != "samples/s" else (f"{text}/s" if unit else text)


def fmt_ratio(v: float) -> str:
    return f"{v:.3f}" if v is not None and math.isfinite(v) else ""


def fmt_ci(lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return f"[{lo:.3f}, {hi:.3f}]"


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return ""
    return "<1e-6" if p < 1e-6 else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def _emit(headers: list[str], body: list[list[str]], fmt: str, title: str | None = None,
          styles: list[str] | None = None) -> None:
    from bench.render.tables import markdown

    if fmt == "md":
        if title:
            print(f"**{title}**\n")
        print(markdown(headers, body))
        print()
        return
    from rich.console import Console
    from rich.table import Table

    from bench.render.tables import _numeric

    if title:
        print(title)
    table = Table(header_style="bold")
    for i, h in enumerate(headers):
        table.add_column(h, justify="right" if _numeric([b[i] for b in body]) else "left",
                         no_wrap=h not in ("notes", "not comparable"))
    for i, cells in enumerate(body):
        table.add_row(*cells, style=(styles[i] if styles else ""))
    console = Console()
    if not console.is_terminal:
        console = Console(width=400)
    console.print(table)


def _bullets(title: str, items: list[str], fmt: str) -> None:
    if not items:
        return
    print(f"{title}:")
    for item in items:
        print(f"  - {item}" if fmt == "md" else f"  {item}")
    if fmt == "md":
        print()


def render_comparison(c: Comparison, fmt: str = "table") -> None:
    """Print a Comparison: the table, then cells compared apart, geomeans and a summary line."""
    import json
    import sys

    if fmt == "json":
        print(json.dumps(c.to_json(), indent=1, default=str))
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(c.rows[0].as_dict()) if c.rows else ["verdict"])
        writer.writeheader()
        for r in c.rows:
            writer.writerow(r.as_dict())
        return
    bullet = "- " if fmt == "md" else ""
    print(bullet + c.a.describe())
    print(bullet + c.b.describe())
    if fmt == "md":
        print()
    headers = ["cell", "metric", "A", "B", "B/A", f"{1 - c.alpha:.0%} CI", "change", "p (Holm)", "verdict", "notes"]
    body, styles = [], []
    for r in c.rows:
        notes = ([f"env differs: {r.env_diff}"] if r.env_diff else []) + r.notes
        body.append([r.label, r.metric, fmt_value(r.a, r.unit), fmt_value(r.b, r.unit), fmt_ratio(r.ratio),
                     fmt_ci(r.ci_low, r.ci_high), f"{100 * r.change:+.1f}%" if math.isfinite(r.ratio) else "",
                     fmt_p(r.p_adj), r.verdict, "; ".join(notes)])
        styles.append({"slower": "red", "faster": "green"}.get(r.verdict, ""))
    _emit(headers, body, fmt, styles=styles)
    if c.geomean:
        parts = [f"{m} {g[0]:.3f} [{g[1]:.3f}, {g[2]:.3f}] over {g[3]} cells" for m, g in c.geomean.items()]
        print(f"geometric mean of B/A: {'; '.join(parts)}")
    _bullets(f"broken in B ({len(c.broken)}; counts as a regression)",
             [f"{cell_label(k)}: {why}" for k, why in c.broken], fmt)
    _bullets(f"not compared ({len(c.not_compared)})",
             [f"{cell_label(k)}: {why}" for k, why in c.not_compared if (k, why) not in c.broken], fmt)
    _bullets(f"only in A ({len(c.only_a)})", [cell_label(k) for k in c.only_a], fmt)
    _bullets(f"only in B ({len(c.only_b)})", [cell_label(k) for k in c.only_b], fmt)
    for hint in c.hints:
        print(f"hint: {hint}")
    print(c.summary())


def render_reference(rows: list[RefRow], missing: list[dict[str, Any]], reference: str, fmt: str = "table") -> None:
    import json
    import sys

    records = [r.as_dict() for r in rows]
    if fmt == "json":
        print(json.dumps({"reference": str(reference), "rows": records,
                          "no_published_figure": [cell_label(k) for k in missing]}, indent=1, default=str))
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]) if records else ["model"])
        writer.writeheader()
        writer.writerows(records)
        return
    headers = ["cell", "precision", "instance", "samples/s", "published", "% of published",
               "p50 ms", "published", "p50 ratio", "p99 ms", "published", "p99 ratio", "SDK", "comparable?", "notes"]
    body, styles = [], []
    for r in rows:
        ref = r.ref or {}
        d = r.as_dict()
        tput = fmt_value(r.run.get("throughput", math.nan))
        if "throughput" in r.run_ci:
            lo, hi = r.run_ci["throughput"]
            tput += f" ±{max(r.run['throughput'] - lo, hi - r.run['throughput']) / r.run['throughput']:.1%}"
        body.append([cell_label(r.key), str(r.key.get("precision")), str(r.key.get("instance") or "-"), tput,
                     fmt_value(_num(ref.get("throughput"))), _pct(d.get("throughput_ratio")),
                     fmt_value(r.run.get("p50", math.nan)), fmt_value(_num(ref.get("p50"))),
                     fmt_ratio(d.get("p50_ratio") or math.nan),
                     fmt_value(r.run.get("p99", math.nan)), fmt_value(_num(ref.get("p99"))),
                     fmt_ratio(d.get("p99_ratio") or math.nan), str(ref.get("sdk_version") or ""),
                     "yes" if r.comparable else "not comparable: " + ", ".join(r.mismatches),
                     r.stability])
        styles.append("" if r.comparable else "dim")
    if body:
        _emit(headers, body, fmt, title=f"against {reference}", styles=styles)
    sources = sorted({str(r.ref.get("source_url")) for r in rows if r.ref and r.ref.get("source_url")})
    _bullets("sources", sources, fmt)
    _bullets(f"no published figure for the model and batch size ({len(missing)})",
             [cell_label(k) for k in missing], fmt)
    ok = sum(r.comparable for r in rows)
    print(f"{len(rows)} cells matched a published model and batch size; {ok} comparable, "
          f"{len(rows) - ok} not comparable; {len(missing)} without a published figure")


def _pct(v: float | None) -> str:
    return f"{100 * v:.0f}%" if v is not None else ""


def _sort_key(values: Iterable[Any]) -> tuple:
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in values)


def render_pivot(pivots: list[Pivot], fmt: str = "table") -> None:
    import json
    import sys

    if fmt in ("json", "csv"):
        records = [rec for p in pivots for rec in p.as_records()]
        if fmt == "json":
            print(json.dumps(records, indent=1, default=str))
        else:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        return
    for p in pivots:
        keys = [k for k, _ in p.rows]
        # Row-header columns: the key columns that are set and vary (model, batch, ...).
        show = [c for c in KEY_COLUMNS if any(k.get(c) is not None for k in keys)
                and (c in ("model", "batch_size") or len({k.get(c) for k in keys}) > 1)]
        headers = [("batch" if c == "batch_size" else c) for c in show] + ["shape"] + p.columns
        body, notes = [], []
        for key, cells in sorted(p.rows, key=lambda kc: _sort_key(kc[0].get(c) for c in KEY_COLUMNS)):
            base = cells.get(p.columns[0], (math.nan, ""))[0]
            line = ["" if key.get(c) is None else str(key.get(c)) for c in show] + [shape_label(key)]
            for col in p.columns:
                if col not in cells:
                    line.append("")
                    continue
                value, note = cells[col]
                text = fmt_value(value)
                if col != p.columns[0] and math.isfinite(base) and base:
                    text += f" (×{value / base:.2f})"
                if note:
                    text += " unstable"
                    notes.append(f"{cell_label(key)} {col}: {note}")
                line.append(text)
            body.append(line)
        unit = "samples/s" if p.metric.kind == "throughput" else p.metric.unit
        _emit(headers, body, fmt, title=f"{p.metric.name} ({unit}) by {p.by}; (×r) = relative to {p.columns[0]}")
        _bullets("unstable", notes, fmt)


# -- command line ------------------------------------------------------------------------


def run_cli(args: Any) -> int:
    """`trnbench compare`: run vs run (exit 1 on a regression with --fail-on-regression),
    run vs published figures (--reference), or a pivot (--by)."""
    if args.reference and args.by:
        raise UsageError("give either --reference or --by, not both")
    if args.reference:
        rows, missing = compare_reference(args.runs, args.reference)
        if not rows and not missing:
            raise UsageError("no usable rows (status ok or unstable) in the given runs")
        render_reference(rows, missing, args.reference, args.format)
        return 0
    if args.by:
        render_pivot(pivot(args.runs, args.by, args.metric), args.format)
        return 0
    if len(args.runs) != 2:
        raise UsageError(f"compare needs two runs, A and B (got {len(args.runs)}); "
                         "for more runs side by side use --by run")
    ignore = [c.strip() for c in (args.ignore_key or "").split(",") if c.strip()]
    comparison = compare_runs(args.runs[0], args.runs[1], metrics=args.metric, threshold=args.threshold,
                              alpha=args.alpha, ignore=ignore)
    render_comparison(comparison, args.format)
    if args.fail_on_regression and comparison.regressions:
        import sys

        print(f"regression: {comparison.summary()}", file=sys.stderr)
        return 1
    return 0
