"""When a measurement stops: the stopping rule is data, not loop constants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.stats.quantile import relative_p50_halfwidth


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
