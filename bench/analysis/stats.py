"""Statistics on raw per-request samples: percentiles, confidence intervals, stopping, stability.

Pure numpy/scipy (no torch), so the orchestrator, `compare` and `report` can use it.
Percentile CIs are distribution-free: the order-statistic interval from the binomial
distribution of the number of samples below the true quantile (valid for any continuous
distribution; coverage >= the stated level).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PERCENTILES: dict[str, float] = {
    "p0": 0.0, "p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99_9": 99.9, "p100": 100.0,
}
CI_QUANTILES: dict[str, float] = {"p50": 0.50, "p99": 0.99}
UNSTABLE_IQR_RATIO = 0.20  # IQR / median above this marks a cell `unstable`
UNSTABLE_CI_RATIO = 0.05  # p50 CI half-width / p50 above this marks a cell `unstable`
UNSTABLE_THROUGHPUT_CV = 0.15  # throughput: CV of the per-interval rate above this is unstable
UNSTABLE_ROUND_SPREAD = 0.25  # rounds whose medians (or rates) differ by more: unstable


def binom_ppf(p: float, n: int, q: float) -> int:
    """scipy.stats.binom.ppf(p, n, q): the smallest k with P(B <= k) >= p.

    Without scipy: importing scipy.special costs ~0.25 s, paid by every worker process (the
    stopping rule) and by the orchestrator before its first row. The CDF is summed only
    within 12 standard deviations of the mean (the mass outside is under 1e-30), from the
    log pmf at the window's start (math.lgamma) and the ratio pmf(k+1)/pmf(k) =
    (n-k)/(k+1) * q/(1-q); tests/test_stats.py checks it against scipy over a grid (at the
    tails the intervals use; at an exact tie such as p = q = 0.5 and n odd the two may differ by
    one, which rounding decides)."""
    if n <= 0 or q <= 0:
        return 0
    if q >= 1:
        return n
    sd = math.sqrt(n * q * (1 - q))
    lo, hi = max(0, math.floor(n * q - 12 * sd - 1)), min(n, math.ceil(n * q + 12 * sd + 1))
    k = np.arange(lo, hi, dtype=np.float64)
    first = (math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1)
             + lo * math.log(q) + (n - lo) * math.log1p(-q))
    steps = np.log((n - k) / (k + 1)) + (math.log(q) - math.log1p(-q))
    cdf = np.cumsum(np.exp(first + np.concatenate(([0.0], np.cumsum(steps)))))
    # scipy's ppf allows for rounding in the CDF the same way (a relative 1e-10 below p counts)
    return int(min(lo + np.searchsorted(cdf, p * (1 - 1e-10), side="left"), n))


def quantile_ci_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """0-based indices (lo, hi) into the sorted sample so P(x[lo] <= xi_q <= x[hi]) >= confidence.

    With B ~ Binomial(n, q), P(x(r) <= xi_q <= x(s)) = P(r <= B <= s-1) for 1-based ranks.
    Either index is None when n is too small for that side to be bounded.
    """
    if n <= 0:
        return None, None
    alpha = 1.0 - confidence
    r = binom_ppf(alpha / 2, n, q)  # 1-based rank: P(B <= r-1) < alpha/2
    s = binom_ppf(1 - alpha / 2, n, q) + 1  # P(B >= s) <= alpha/2
    lo = r - 1 if r >= 1 else None
    hi = s - 1 if s <= n else None
    return lo, hi


def quantile_ci(sorted_x: np.ndarray, q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the q-quantile of an already sorted sample (NaN where unbounded)."""
    lo, hi = quantile_ci_ranks(len(sorted_x), q, confidence)
    return (float(sorted_x[lo]) if lo is not None else float("nan"),
            float(sorted_x[hi]) if hi is not None else float("nan"))


def latency_summary(latency_ns: np.ndarray) -> dict[str, float]:
    """`latency_ms_*` columns: percentiles, mean, std, CIs on p50/p99, spread measures."""
    x = np.sort(np.asarray(latency_ns, dtype=np.float64)) / 1e6
    if x.size == 0:
        return {}
    out: dict[str, float] = {}
    values = np.percentile(x, list(PERCENTILES.values()))
    for name, value in zip(PERCENTILES, values):
        out[f"latency_ms_{name}"] = float(value)
    out["latency_ms_mean"] = float(x.mean())
    out["latency_ms_std"] = float(x.std(ddof=1)) if x.size > 1 else 0.0
    for name, q in CI_QUANTILES.items():
        lo, hi = quantile_ci(x, q)
        out[f"latency_ms_{name}_ci_low"] = lo
        out[f"latency_ms_{name}_ci_high"] = hi
    q1, q3 = np.percentile(x, [25, 75])
    median = out["latency_ms_p50"]
    out["latency_cv"] = out["latency_ms_std"] / out["latency_ms_mean"] if out["latency_ms_mean"] > 0 else 0.0
    out["latency_iqr_ratio"] = float((q3 - q1) / median) if median > 0 else 0.0
    return out


def steady_window(start_ns: np.ndarray, end_ns: np.ndarray, trim_s: float) -> tuple[int, int]:
    """[t0, t1] in ns: the measured span with `trim_s` cut from each end.

    The trim is capped at a quarter of the span so a short run still has a window.
    """
    first, last = int(start_ns.min()), int(end_ns.max())
    span = last - first
    trim = int(min(trim_s * 1e9, span / 4))
    return first + trim, last - trim


def throughput_summary(start_ns: np.ndarray, end_ns: np.ndarray, batch_size: int, trim_s: float) -> dict[str, float]:
    """samples/s (= requests x batch / s) over the steady window, and the peak over sub-windows."""
    if len(end_ns) == 0:
        return {}
    t0, t1 = steady_window(start_ns, end_ns, trim_s)
    window_s = (t1 - t0) / 1e9
    inside = (end_ns >= t0) & (end_ns < t1)
    done = int(inside.sum())
    out = {"throughput_avg": done * batch_size / window_s if window_s > 0 else float("nan"),
           "window_s": window_s}
    bucket_s = min(1.0, window_s / 4) if window_s > 0 else 0.0
    if bucket_s > 0:
        n_buckets = max(1, int(window_s // bucket_s))
        idx = ((end_ns[inside] - t0) / (bucket_s * 1e9)).astype(np.int64)
        counts = np.bincount(idx[idx < n_buckets], minlength=n_buckets)
        out["throughput_peak"] = float(counts.max() * batch_size / bucket_s)
        out["throughput_cv"] = float(counts.std() / counts.mean()) if counts.mean() > 0 and n_buckets > 1 else 0.0
    else:
        out["throughput_peak"] = out["throughput_avg"]
    return out


def round_spread(values) -> float:
    """How much a cell's rounds differ: (max - min) / median of their figures, with the
    highest and the lowest floor(n / 10) rounds left out (none below 10 rounds, as `ab`'s paired
    interval trims). The range of n draws grows with n: over 3 rounds it flags rounds that
    disagree, over 12 it flagged one round in twelve that met a slow second of the machine
    (5-8 of 24 cells of a quiet smoke run); the interval over the rounds holds that round."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    k = int(len(v) // 10)
    kept = v[k:len(v) - k]
    return float((kept.max() - kept.min()) / np.median(v))


def instability(summary: dict[str, float], scenario: str = "latency") -> str:
    """A sentence saying why a cell's figure is shaky, or '' when it is steady.

    Latency cells are judged on the spread of single-request latency; throughput cells
    on the steadiness of the rate (latency under load is naturally wide).
    """
    reasons = []
    if scenario == "throughput":
        cv = summary.get("throughput_cv", 0.0)
        if cv > UNSTABLE_THROUGHPUT_CV:
            reasons.append(f"throughput varies by {cv:.0%} (CV) between intervals")
        return "; ".join(reasons)
    iqr = summary.get("latency_iqr_ratio", 0.0)
    if iqr > UNSTABLE_IQR_RATIO:
        reasons.append(f"IQR is {iqr:.0%} of the median")
    p50, lo, hi = (summary.get(k, float("nan")) for k in
                   ("latency_ms_p50", "latency_ms_p50_ci_low", "latency_ms_p50_ci_high"))
    if p50 and np.isfinite(lo) and np.isfinite(hi):
        half = max(p50 - lo, hi - p50) / p50
        if half > UNSTABLE_CI_RATIO:
            reasons.append(f"p50 95% CI is +-{half:.0%}")
    cv = summary.get("latency_cv", 0.0)
    if reasons and cv:
        reasons.append(f"CV {cv:.0%}")
    return "; ".join(reasons)


@dataclass(frozen=True)
class StopRule:
    """Stop once min duration and min samples are met and the p50 CI is tight, or at max.

    The minimums win over the maximum: a slow model measured with `min_samples` runs
    until it has them (the cell timeout, scaled by the first call's latency, bounds it).
    It needs numpy alone (binom_ppf): nothing is imported inside a timed loop, where an
    import would hold the GIL and stall every other request thread.
    """

    min_duration_s: float
    max_duration_s: float
    min_samples: int
    target_ci: float

    def should_stop(self, latency_ns: np.ndarray | list[int], elapsed_s: float) -> bool:
        return self.decide(len(latency_ns), elapsed_s, lambda: np.asarray(latency_ns))

    def decide(self, n: int, elapsed_s: float, latencies: Callable[[], np.ndarray]) -> bool:
        """`latencies()` is called only when the CI must be looked at (it may be costly)."""
        if elapsed_s < self.min_duration_s or n < self.min_samples:
            return False  # both minimums hold even past max_duration_s (as MLPerf's do)
        if elapsed_s >= self.max_duration_s:
            return True
        if self.target_ci <= 0:
            return False
        return relative_p50_halfwidth(latencies()) <= self.target_ci


def relative_p50_halfwidth(latency: np.ndarray) -> float:
    """max(p50 - lo, hi - p50) / p50 for the 95 % CI of the median; inf when unbounded."""
    n = latency.size
    lo_i, hi_i = quantile_ci_ranks(n, 0.5)
    if lo_i is None or hi_i is None:
        return float("inf")
    mid = n // 2
    part = np.partition(latency, sorted({lo_i, mid, hi_i}))
    p50 = float(part[mid])
    if p50 <= 0:
        return float("inf")
    return max(p50 - float(part[lo_i]), float(part[hi_i]) - p50) / p50
