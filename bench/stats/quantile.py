"""Quantiles and their intervals: distribution-free order-statistic intervals (the binomial
distribution of the number of samples below the true quantile; coverage >= the stated level
for any continuous distribution) and exact bootstrap replicates of a sample quantile."""

from __future__ import annotations

import math

import numpy as np


def binom_ppf(p: float, n: int, q: float) -> int:
    """scipy.stats.binom.ppf(p, n, q): the smallest k with P(B <= k) >= p.

    Without scipy: importing scipy.special costs ~0.25 s, paid by every worker process (the
    stopping rule) and by the orchestrator before its first row. The CDF is summed only
    within 12 standard deviations of the mean (the mass outside is under 1e-30), from the
    log pmf at the window's start (math.lgamma) and the ratio pmf(k+1)/pmf(k) =
    (n-k)/(k+1) * q/(1-q); tests/unit/test_stats.py checks it against scipy over a grid (at the
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


def quantile_draws(x: np.ndarray, q: float, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Bootstrap replicates of the q-quantile (k-th order statistic) of sorted x, drawn exactly."""
    from scipy import stats as sps

    n = x.size
    k = min(n, max(1, math.ceil(n * q - 1e-9)))
    cdf = sps.binom.sf(k - 1, n, np.arange(1, n + 1) / n)  # P(k-th of a resample <= x(j))
    idx = np.searchsorted(cdf, rng.random(n_boot), side="left")
    return x[np.minimum(idx, n - 1)]


def bounded(n: int, q: float, alpha: float) -> bool:
    lo, hi = quantile_ci_ranks(n, q, 1 - alpha)
    return lo is not None and hi is not None
