"""What a measurement's raw samples say: latency percentiles with their intervals, throughput
over the steady window, how much a cell's rounds differ."""

from __future__ import annotations

import numpy as np

from bench.stats.quantile import quantile_ci

PERCENTILES: dict[str, float] = {
    "p0": 0.0, "p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99_9": 99.9, "p100": 100.0,
}


CI_QUANTILES: dict[str, float] = {"p50": 0.50, "p99": 0.99}


def call_sync_summary(call_ns: np.ndarray, latency_ns: np.ndarray) -> dict[str, float]:
    """`call_ms_*` and `sync_ms_*`: a request's time in its call, and in the sync after it (the rest)."""
    call = np.asarray(call_ns, dtype=np.float64) / 1e6
    wait = np.asarray(latency_ns, dtype=np.float64) / 1e6 - call
    if call.size == 0:
        return {}
    (c50, c99), (s50, s99) = np.percentile(call, [50, 99]), np.percentile(wait, [50, 99])
    return {"call_ms_p50": float(c50), "call_ms_p99": float(c99), "sync_ms_p50": float(s50), "sync_ms_p99": float(s99)}


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


DIST_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}


def distribution(prefix: str, values_ns: np.ndarray, out: dict[str, float]) -> None:
    """`<prefix>_ms_p50/p90/p99/mean` of ns values into `out` (NaNs left out; nothing when empty)."""
    x = np.asarray(values_ns, dtype=np.float64)
    x = x[np.isfinite(x)] / 1e6
    if x.size == 0:
        return
    for name, value in zip(DIST_PERCENTILES, np.percentile(x, list(DIST_PERCENTILES.values()))):
        out[f"{prefix}_ms_{name}"] = float(value)
    out[f"{prefix}_ms_mean"] = float(x.mean())
