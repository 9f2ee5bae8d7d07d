"""When a figure is shaky: the thresholds that make a cell `unstable`, and the sentence that says why."""

from __future__ import annotations

import numpy as np

UNSTABLE_IQR_RATIO = 0.20  # IQR / median above this marks a cell `unstable`


UNSTABLE_CI_RATIO = 0.05  # p50 CI half-width / p50 above this marks a cell `unstable`


UNSTABLE_THROUGHPUT_CV = 0.15  # throughput: CV of the per-interval rate above this is unstable


UNSTABLE_ROUND_SPREAD = 0.25  # rounds whose medians (or rates) differ by more: unstable


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
