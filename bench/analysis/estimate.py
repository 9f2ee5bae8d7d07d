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

from bench.analysis.samples import Samples
from bench.errors import UsageError
from bench.stats import intervals
from bench.stats.bootstrap import design_effect, widen_draws
from bench.stats.quantile import bounded, quantile_draws

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


@dataclass
class Estimate:
    value: float
    draws: np.ndarray | None  # bootstrap replicates of the value (None: no CI)
    note: str = ""
    widened: float = 1.0  # factor applied to the spread for correlation in time
    # measured in groups (rounds, pooled runs): each group's value; the CI is over them
    groups: np.ndarray | None = None


def estimate(samples: Samples, metric: Metric, rng: np.random.Generator, alpha: float = ALPHA,
             n_boot: int = N_BOOT) -> Estimate | None:
    """The metric's value from raw samples and its replicates; None without samples.

    Requests measured in groups (rounds of a run, several runs pooled) of at least
    `intervals.MIN_GROUPS`: the groups' values, their geometric mean and a t interval over
    them (bench.stats.intervals), which holds the variance between groups. Else one
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
    if metric.kind == "quantile" and any(g.size < intervals.min_group_size(metric.q)
                                         for g in samples.latency_parts(metric.samples)):
        labelled = samples.latency_groups(metric.samples)  # rounds too short: consecutive ones joined
        parts = intervals.merged([g for _, g in labelled], metric.q, [label[0] for label, _ in labelled])
        if any(g.size < intervals.min_group_size(metric.q) for g in parts):
            return None  # a group too small for its own quantile: its value would be its extreme
        values = intervals.group_values(parts, metric.q)
    else:
        values = round_values(samples, metric)
    if values is None:
        return None
    draws = intervals.replicates(values, rng, n_boot)
    if draws is None:
        return None
    center, _, _ = intervals.interval(values)
    return Estimate(center, draws, groups=values)


def round_values(samples: Samples, metric: Metric) -> np.ndarray | None:
    """The metric in each group of requests (rounds of a run, runs pooled); None without groups."""
    if metric.kind == "throughput":
        groups = samples.rate_groups()
        return np.array([g.mean() for g in groups]) if groups else None
    groups = samples.latency_parts(metric.samples)
    if not groups:
        return None
    return intervals.group_values(groups, metric.q if metric.kind == "quantile" else None)


def labelled_round_values(samples: Samples, metric: Metric) -> dict[tuple[str, int], float]:
    """`round_values` keyed by each group's label (run directory, round index)."""
    if metric.kind == "throughput":
        return {label: float(g.mean()) for label, g in samples.labelled_rate_groups()}
    q = metric.q if metric.kind == "quantile" else None
    groups = samples.latency_groups(metric.samples)
    return {label: float(np.quantile(g, q)) if q is not None else float(np.mean(g)) for label, g in groups if len(g)}


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
