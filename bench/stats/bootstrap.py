"""Requests measured back to back are not independent: the design effect that widens a
bootstrap interval over them, and the widening itself."""

from __future__ import annotations

import numpy as np

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
