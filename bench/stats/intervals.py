"""Uncertainty that includes what varies between rounds (or runs): intervals over group statistics.

Requests measured in one contiguous window are not independent draws of what the machine
does: it changes on a scale of seconds to minutes (neighbours, frequency, heap state), so a
CI computed inside one window says nothing about the next. With a cell's requests in groups
— its rounds spread over a run, or the runs pooled on one side of a comparison — each group
gives one value of the statistic (its median, p99, throughput), and the interval is a t
interval over the log of those values: mean ± t(G-1) · sd / √G. The spread of the group values
holds both the within-group sampling noise and the between-group variance, which is the
point; on the log scale a ratio of two sides is a difference (Welch's interval). Measured
coverage of the 95 % interval of a median, lognormal requests with a 5 % between-round
shift, 1000 trials: 95.7 % for 3, 5 and 10 rounds (tests/unit/test_stats.py repeats this); a
two-stage bootstrap over so few groups covered only ~82 % at 5 rounds, which is why it is
not used.

`paired_interval` is the version for paired log ratios (`trnbench ab`): from 10 rounds on, a
10 % trimmed mean (the highest and lowest ratio of 10-19 rounds left out) with its winsorised
standard error and h-1 degrees of freedom (Tukey and McLaughlin; Wilcox, "Introduction to
Robust Estimation and Hypothesis Testing", ch. 4). One round in which a single side met a
stall (seen here: one round of twelve at 4x the others) moves a plain mean of 12 log ratios
by ~12 % and hid a real 20 % change; the trimmed mean leaves it out. Unlike a signed-rank
test over 10 rounds (smallest p 2/1024, which Holm over many rows could never call
significant) it has no floor on its p value. Measured coverage of the 95 % interval, 3000
trials each, 10/12/20 rounds: normal ratios 94.9/95.2/93.9 %, t(3) 94.9/95.6/95.0 %, one
outlier round in 30 % of runs 95.5/94.7/95.1 % (20 % trimming gave 93-94 % at 10-12 rounds).

`replicates` turns such an interval into draws from its t distribution, so that code built
on bootstrap replicates (ratios, geometric means) composes with it unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

MIN_GROUPS = 3  # fewer groups: no between-group interval (the t quantile at 1 dof is 12.7)


def min_group_size(q: float) -> int:
    """Requests a group needs before its q-quantile is a value of its own rather than its
    extreme: 1 / (1 - q) of them (one expected beyond it: 100 for p99, 20 for p95), and at
    least 6 (a median with a bounded 95 % order-statistic interval). The interval over the
    groups, not each group's own, is what the uncertainty then rests on: requiring a bounded
    p99 interval inside every group (~370 requests) sent the p99 of short rounds back to a
    pooled bootstrap that cannot see what varies between rounds or runs, and the A/A smoke
    gate tripped on tiny models' p99 in 4-8 of 9 pairs."""
    return max(6, round(1.0 / (1.0 - q))) if q < 1 else 10**9


def merged(groups: Sequence[np.ndarray], q: float, labels: Sequence[object] | None = None) -> list[np.ndarray]:
    """Consecutive groups (of the same label: the same run) joined until each holds
    `min_group_size(q)` requests, a short remainder going to the group before it, so that each
    has a q-quantile of its own. Short rounds (0.125 s of a ~1 ms model: ~100 requests) then
    still give an interval over groups for p99, which holds what varies between them, instead
    of a pooled bootstrap that cannot see it (measured: 3 of 4 A/A smoke pairs tripped on p99
    that way; the interval over groups of two rounds is still over windows of the run)."""
    need = min_group_size(q)
    labels = list(labels) if labels is not None else [None] * len(groups)
    out: list[tuple[object, np.ndarray]] = []
    pending: list[np.ndarray] = []
    for i, g in enumerate(groups):
        pending.append(np.asarray(g))
        last_of_label = i + 1 == len(groups) or labels[i + 1] != labels[i]
        if sum(p.size for p in pending) >= need or last_of_label:
            joined = np.concatenate(pending)
            if joined.size < need and out and out[-1][0] == labels[i]:
                out[-1] = (labels[i], np.concatenate([out[-1][1], joined]))
            else:
                out.append((labels[i], joined))
            pending = []
    return [g for _, g in out]


def group_values(groups: Sequence[np.ndarray], q: float | None) -> np.ndarray:
    """Each group's q-quantile (q None: its mean); empty groups are left out."""
    vals = [float(np.quantile(g, q)) if q is not None else float(np.mean(g)) for g in groups if len(g)]
    return np.asarray(vals, dtype=np.float64)


def log_t(values: np.ndarray) -> tuple[float, float, int] | None:
    """(mean of log values, its standard error, degrees of freedom); None when it cannot be formed."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < MIN_GROUPS or np.any(v <= 0) or not np.all(np.isfinite(v)):
        return None
    logs = np.log(v)
    return float(logs.mean()), float(logs.std(ddof=1) / math.sqrt(v.size)), v.size - 1


def interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(geometric mean, low, high) of the group values; NaNs when it cannot be formed."""
    from scipy.special import (
        stdtrit,  # Student's t quantile: scipy.stats.t.ppf without scipy.stats' import
    )

    fit = log_t(values)
    if fit is None:
        return float("nan"), float("nan"), float("nan")
    center, se, df = fit
    half = float(stdtrit(df, 0.5 + confidence / 2)) * se
    return math.exp(center), math.exp(center - half), math.exp(center + half)


TRIM = 0.1  # floor(0.1 n) rounds off each end: none below 10 rounds


def paired_interval(logs: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(ratio, low, high, two-sided p of ratio 1) from paired log ratios, trimmed when there are enough."""
    from scipy.stats import t

    x = np.sort(np.asarray(logs, dtype=np.float64))
    n = x.size
    if n < MIN_GROUPS or not np.all(np.isfinite(x)):
        return float("nan"), float("nan"), float("nan"), float("nan")
    g = int(math.floor(TRIM * n))
    kept = x[g:n - g]
    wins = np.clip(x, kept[0], kept[-1])
    h = kept.size
    center = float(kept.mean())
    # the winsorised sd over (1 - 2g/n) sqrt(n); with nothing trimmed this is the usual sd / sqrt(n)
    se = float(wins.std(ddof=1)) / ((1 - 2 * g / n) * math.sqrt(n))
    df = h - 1
    if se == 0.0:
        p = 1.0 if center == 0.0 else 0.0
        return math.exp(center), math.exp(center), math.exp(center), p
    half = float(t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * t.sf(abs(center) / se, df))
    return math.exp(center), math.exp(center - half), math.exp(center + half), p


YUEN_TRIM = 0.2  # welch_interval: floor(0.2 n) values off each end (none below 5 values)


def welch_interval(logs_a: np.ndarray, logs_b: np.ndarray, confidence: float = 0.95,
                   trim: float = YUEN_TRIM) -> tuple[float, float, float, float]:
    """(ratio, low, high, two-sided p of ratio 1) of exp(tmean(logs_b) - tmean(logs_a)) for
    two independent samples of log values (at least 2 each): Yuen's trimmed-means version of
    Welch's interval (scipy.stats.ttest_ind(trim=0.2)), so that one round that met a stall
    does not decide it. Measured coverage of the 95 % interval, 3000 trials each, 3+3 / 6+3 /
    5+5 / 6+6 / 10+10 values: normal 96.6/95.6/95.6/95.7/94.7 %, t(3) 98.1/96.2/96.2/96.4/95.1 %,
    10 % of values shifted by Exp(6) sd 97.3/96.4/96.4/95.8/95.7 % (untrimmed Welch there:
    97.6 % at 10+10 with an interval 1.5x as wide)."""
    from scipy.stats import ttest_ind

    a, b = np.asarray(logs_a, dtype=np.float64), np.asarray(logs_b, dtype=np.float64)
    if a.size < 2 or b.size < 2 or a.size + b.size < MIN_GROUPS + 1 or not (
            np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("nan"), float("nan"), float("nan"), float("nan")
    if a.var() == 0 and b.var() == 0:
        center = float(b.mean() - a.mean())
        return math.exp(center), math.exp(center), math.exp(center), 1.0 if center == 0 else 0.0
    res = ttest_ind(b, a, equal_var=False, trim=trim)
    ci = res.confidence_interval(confidence)
    center = (float(ci.low) + float(ci.high)) / 2  # the difference of the trimmed means
    return math.exp(center), math.exp(float(ci.low)), math.exp(float(ci.high)), float(res.pvalue)


def replicates(values: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray | None:
    """Draws of the geometric mean from its t distribution (None when it cannot be formed)."""
    fit = log_t(values)
    if fit is None:
        return None
    center, se, df = fit
    return np.exp(center + se * rng.standard_t(df, n))


def json_list(text: Any) -> list[float]:
    """The numbers of a JSON list (a row's per-round column); [] for anything else."""
    try:
        values = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [float(v) for v in values if isinstance(v, (int, float))] if isinstance(values, list) else []


def paired_logs(mine: Any, theirs: Any) -> np.ndarray:
    """log(cell / control) per round from two JSON lists of per-round figures (rounds where
    either is missing or not positive left out)."""
    pairs = [(x, y) for x, y in zip(json_list(mine), json_list(theirs)) if x > 0 and y > 0]
    return np.array([math.log(x / y) for x, y in pairs], dtype=np.float64)
