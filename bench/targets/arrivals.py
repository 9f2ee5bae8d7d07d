"""Open-loop arrival schedules (the `server` scenario's load; pure numpy, no torch).

Inter-arrival times are gamma-distributed with shape `burstiness` and mean 1 / rate, as in
vLLM's `benchmark_serving.py` (`np.random.gamma(shape=burstiness, scale=1 / (rate *
burstiness))`): burstiness 1 is a Poisson process (exponential gaps, MLPerf's Server
scenario), below 1 the arrivals come in bursts, above 1 they are more evenly spaced.
The generator is seeded, so a schedule is the same in every process and every run, and the
schedule at rate r is the schedule at rate 1 scaled by 1 / r (same seed, same shape).
"""

from __future__ import annotations

import numpy as np

SEED = 0  # fixed: two runs of the same cell offer exactly the same load
_CHUNK = 4096  # draws are made in fixed-size chunks so the stream does not depend on the length


def schedule_ns(rate_qps: float, duration_s: float, burstiness: float = 1.0, seed: int = SEED) -> np.ndarray:
    """Arrival offsets in ns from the start, sorted, the first at 0, all < `duration_s`."""
    if not rate_qps > 0 or not np.isfinite(rate_qps):
        raise ValueError(f"rate must be a positive number, got {rate_qps!r}")
    if not burstiness > 0 or not np.isfinite(burstiness):
        raise ValueError(f"burstiness must be a positive number, got {burstiness!r}")
    rng = np.random.default_rng(seed)
    scale = 1.0 / (rate_qps * burstiness)
    limit = duration_s
    times: list[np.ndarray] = [np.zeros(1)]
    last = 0.0
    while last < limit:
        gaps = rng.gamma(shape=burstiness, scale=scale, size=_CHUNK)
        chunk = last + np.cumsum(gaps)
        times.append(chunk)
        last = float(chunk[-1])
    t = np.concatenate(times)
    t = t[t < limit]
    return np.round(t * 1e9).astype(np.int64)
