"""Estimators with bootstrap replicates: what a metric is, from raw samples, and its spread.

See bench.analysis.compare's docstring for how the replicates become a ratio CI and a verdict.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.analysis import hierarchy
from bench.analysis.samples import Samples
from bench.errors import UsageError

N_BOOT = 4000  # bootstrap replicates per row
SEED = 20240601  # fixed: the same inputs give the same CIs
ALPHA = 0.05


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


# Figures a row records but that have no samples to estimate from: pivots show them as recorded.
RECORDED: dict[str, Metric] = {
    "cost": Metric("cost", "cost_per_1m_inf", "$ per 1M inferences", "recorded"),
    "cost_tokens": Metric("cost_tokens", "cost_per_1m_tokens", "$ per 1M output tokens", "recorded"),
}


def parse_metrics(text: str | Sequence[str] | None, recorded: bool = False) -> list[Metric]:
    """'p50,p99,throughput' -> Metrics; unknown names are a UsageError. `recorded`: also the
    figures that are only recorded (cost), for pivots."""
    if text is None:
        return [METRICS[m] for m in DEFAULT_METRICS]
    known = {**METRICS, **(RECORDED if recorded else {})}
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[Metric] = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        name = _METRIC_ALIASES.get(item, item)
        if name not in known:
            raise UsageError(f"unknown metric {item!r} (choose from {', '.join(known)})")
        if known[name] not in out:
            out.append(known[name])
    if not out:
        raise UsageError("--metric: empty list")
    return out


def quantile_draws(x: np.ndarray, q: float, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Bootstrap replicates of the q-quantile (k-th order statistic) of sorted x, drawn exactly."""
    from scipy import stats as sps

    n = x.size
    k = min(n, max(1, math.ceil(n * q - 1e-9)))
    cdf = sps.binom.sf(k - 1, n, np.arange(1, n + 1) / n)  # P(k-th of a resample <= x(j))
    idx = np.searchsorted(cdf, rng.random(n_boot), side="left")
    return x[np.minimum(idx, n - 1)]


def bounded(n: int, q: float, alpha: float) -> bool:
    from bench.analysis.stats import quantile_ci_ranks

    lo, hi = quantile_ci_ranks(n, q, 1 - alpha)
    return lo is not None and hi is not None


@dataclass
class Estimate:
    value: float
    draws: np.ndarray | None  # bootstrap replicates of the value (None: no CI)
    note: str = ""
    widened: float = 1.0  # factor applied to the spread for correlation in time
    # measured in groups (rounds, pooled runs): each group's value; the CI is over them
    groups: np.ndarray | None = None


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


def widen_draws(draws: np.ndarray, factor: float) -> np.ndarray:
    """Scale the spread of positive bootstrap replicates about their median, in log space."""
    if factor <= 1.0:
        return draws
    center = float(np.median(draws))
    if center <= 0 or np.any(draws <= 0):
        return center + (draws - center) * factor
    return center * (draws / center) ** factor


def estimate(samples: Samples, metric: Metric, rng: np.random.Generator, alpha: float = ALPHA,
             n_boot: int = N_BOOT) -> Estimate | None:
    """The metric's value from raw samples and its replicates; None without samples.

    Requests measured in groups (rounds of a run, several runs pooled) of at least
    `hierarchy.MIN_GROUPS`: the groups' values, their geometric mean and a t interval over
    them (bench.analysis.hierarchy), which holds the variance between groups. Else one
    window: the bootstraps below, widened by the design effect of correlated requests.
    """
    grouped = _grouped(samples, metric, alpha, rng, n_boot)
    if grouped is not None:
        return grouped
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
    if not bounded(x.size, metric.q, alpha):
        return Estimate(value, None, f"too few samples for a {metric.name} CI (n={x.size})")
    widen = math.sqrt(design_effect([p <= value for p in parts]))
    return Estimate(value, widen_draws(quantile_draws(x, metric.q, rng, n_boot), widen), widened=widen)


def _grouped(samples: Samples, metric: Metric, alpha: float, rng: np.random.Generator,
             n_boot: int) -> Estimate | None:
    """The between-group estimate, where there are enough groups (else None)."""
    if metric.kind == "quantile" and any(g.size < hierarchy.min_group_size(metric.q)
                                         for g in samples.latency_parts(metric.samples)):
        labelled = samples.latency_groups(metric.samples)  # rounds too short: consecutive ones joined
        parts = hierarchy.merged([g for _, g in labelled], metric.q, [label[0] for label, _ in labelled])
        if any(g.size < hierarchy.min_group_size(metric.q) for g in parts):
            return None  # a group too small for its own quantile: its value would be its extreme
        values = hierarchy.group_values(parts, metric.q)
    else:
        values = round_values(samples, metric)
    if values is None:
        return None
    draws = hierarchy.replicates(values, rng, n_boot)
    if draws is None:
        return None
    center, _, _ = hierarchy.interval(values)
    return Estimate(center, draws, groups=values)


def round_values(samples: Samples, metric: Metric) -> np.ndarray | None:
    """The metric in each group of requests (rounds of a run, runs pooled); None without groups."""
    if metric.kind == "throughput":
        groups = samples.rate_groups()
        return np.array([g.mean() for g in groups]) if groups else None
    groups = samples.latency_parts(metric.samples)
    if not groups:
        return None
    return hierarchy.group_values(groups, metric.q if metric.kind == "quantile" else None)


def labelled_round_values(samples: Samples, metric: Metric) -> dict[tuple[str, int], float]:
    """`round_values` keyed by each group's label (run directory, round index)."""
    if metric.kind == "throughput":
        return {label: float(g.mean()) for label, g in samples.labelled_rate_groups()}
    q = metric.q if metric.kind == "quantile" else None
    groups = samples.latency_groups(metric.samples)
    return {label: float(np.quantile(g, q)) if q is not None else float(np.mean(g)) for label, g in groups if len(g)}


def welch_log(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of equal geometric means, Welch's t test on the log group values."""
    from scipy.stats import ttest_ind

    if a.size < 2 or b.size < 2 or np.any(a <= 0) or np.any(b <= 0):
        return float("nan")
    la, lb = np.log(a), np.log(b)
    if np.all(la == la[0]) and np.all(lb == la[0]):
        return 1.0
    return float(ttest_ind(la, lb, equal_var=False).pvalue)


def mann_whitney(a: np.ndarray, b: np.ndarray) -> float:
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


def row_rng(key: dict[str, Any], metric: str, seed: int) -> np.random.Generator:
    """A generator per row, so a row's CI does not depend on which other rows are compared."""
    return np.random.default_rng([seed, zlib.crc32(f"{sorted(key.items())}|{metric}".encode())])


def verdict_of(lo: float, hi: float, p_adj: float, lower_is_better: bool, threshold: float, alpha: float) -> str:
    """The verdict rule on a CI [lo, hi] of B/A and its Holm-adjusted p-value."""
    if not (math.isfinite(p_adj) and p_adj < alpha):
        return "~"
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0:
        return "~"
    lo, hi = (lo, hi) if lower_is_better else (1 / hi, 1 / lo)
    factor = 1.0 + threshold
    if lo > factor:
        return "slower"
    if hi < 1.0 / factor:
        return "faster"
    return "~"
