"""Tests of "is it different at all" and the family-wise correction over many rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def welch_log(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of equal geometric means: Welch's t test on the log group values (the
    untrimmed case of bench.stats.intervals.welch_interval, the one implementation)."""
    from bench.stats.intervals import welch_interval

    if a.size < 2 or b.size < 2 or np.any(a <= 0) or np.any(b <= 0):
        return float("nan")
    la, lb = np.log(a), np.log(b)
    if np.all(la == la[0]) and np.all(lb == la[0]):
        return 1.0
    return welch_interval(la, lb, trim=0.0)[3]


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
