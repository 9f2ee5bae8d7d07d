"""Statistics against known distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from bench.stats import quantile, stability, stop, summary


@pytest.mark.parametrize("q,n", [(0.5, 200), (0.99, 1500)])
@pytest.mark.parametrize("dist", ["lognorm", "expon"])
def test_quantile_ci_covers_true_percentile_about_95_percent(q, n, dist):
    rng = np.random.default_rng(1234)
    trials = 2000
    if dist == "lognorm":
        sample = rng.lognormal(mean=0.0, sigma=0.5, size=(trials, n))
        truth = sps.lognorm(s=0.5).ppf(q)
    else:
        sample = rng.exponential(scale=2.0, size=(trials, n))
        truth = sps.expon(scale=2.0).ppf(q)
    sample.sort(axis=1)
    lo, hi = quantile.quantile_ci_ranks(n, q)
    assert lo is not None and hi is not None
    covered = (sample[:, lo] <= truth) & (truth <= sample[:, hi])
    coverage = covered.mean()
    # distribution-free order-statistic intervals are conservative: >= 95 % up to discreteness
    assert 0.93 <= coverage <= 0.99, coverage


def test_quantile_ci_unbounded_when_too_few_samples():
    lo, hi = quantile.quantile_ci_ranks(50, 0.99)
    assert hi is None  # 50 samples cannot bound p99 from above at 95 %
    x = np.sort(np.arange(50.0))
    assert np.isnan(quantile.quantile_ci(x, 0.99)[1])


def test_latency_summary_values():
    lat_ns = np.arange(1, 1001) * 1_000_000  # 1..1000 ms
    s = summary.latency_summary(lat_ns)
    assert s["latency_ms_p0"] == 1.0 and s["latency_ms_p100"] == 1000.0
    assert s["latency_ms_p50"] == pytest.approx(500.5)
    assert s["latency_ms_p99"] == pytest.approx(np.percentile(np.arange(1, 1001), 99))
    assert s["latency_ms_mean"] == pytest.approx(500.5)
    assert s["latency_ms_p50_ci_low"] <= 500.5 <= s["latency_ms_p50_ci_high"]
    assert s["latency_ms_p99_ci_low"] <= s["latency_ms_p99"] <= s["latency_ms_p99_ci_high"]


def test_throughput_trims_the_ends_and_counts_samples_per_second():
    # 1000 requests/s for 4 s, batch 2: steady 2000 samples/s
    start = np.arange(4000, dtype=np.int64) * 1_000_000
    end = start + 500_000
    s = summary.throughput_summary(start, end, batch_size=2, trim_s=1.0)
    assert s["window_s"] == pytest.approx(2.0, rel=1e-3)
    assert s["throughput_avg"] == pytest.approx(2000, rel=0.01)
    assert s["throughput_peak"] == pytest.approx(2000, rel=0.01)
    assert s["throughput_cv"] < 0.01


def test_stop_rule_needs_min_duration_min_samples_then_tight_ci():
    rule = stop.StopRule(min_duration_s=1.0, max_duration_s=5.0, min_samples=100, target_ci=0.01)
    tight = np.full(1000, 1_000_000) + np.arange(1000) % 3
    assert not rule.should_stop(tight, 0.5)  # before min duration
    assert not rule.should_stop(tight[:50], 2.0)  # too few samples
    assert rule.should_stop(tight, 1.5)  # tight CI
    wide = np.random.default_rng(0).exponential(1e6, size=200)
    assert not rule.should_stop(wide, 1.5)  # CI too wide: keep going
    assert rule.should_stop(wide, 5.0)  # until the maximum duration
    assert not rule.should_stop(wide[:50], 9.0)  # but never with fewer than min_samples
    no_early = stop.StopRule(1.0, 5.0, 100, 0.0)
    assert not no_early.should_stop(tight, 1.5)


def test_instability_in_words():
    steady = summary.latency_summary(np.full(500, 1_000_000) + np.arange(500))
    assert stability.instability(steady) == ""
    noisy = summary.latency_summary(np.random.default_rng(0).exponential(1e6, size=500))
    assert "IQR" in stability.instability(noisy)
    assert "throughput varies" in stability.instability({"throughput_cv": 0.3}, "throughput")


def test_binom_ppf_matches_scipy_where_the_intervals_use_it():
    """The order-statistic intervals ask for the alpha/2 and 1 - alpha/2 points; without
    scipy (bench.stats.binom_ppf) they match scipy.stats.binom.ppf exactly over a
    grid of sample sizes up to 5 million and the quantiles reported."""
    from scipy.stats import binom

    from bench.stats.quantile import binom_ppf

    sizes = [*range(1, 300), 997, 1000, 3001, 10_007, 100_000, 1_000_000, 5_000_000]
    for n in sizes:
        for q in (0.01, 0.5, 0.9, 0.95, 0.99, 0.999):
            for p in (0.005, 0.025, 0.975, 0.995):
                assert binom_ppf(p, n, q) == int(binom.ppf(p, n, q)), (p, n, q)
    assert binom_ppf(0.5, 10, 0.0) == 0 and binom_ppf(0.5, 10, 1.0) == 10 and binom_ppf(0.5, 0, 0.5) == 0


def test_short_rounds_are_joined_until_each_has_its_own_p99():
    """Rounds of ~100 requests: consecutive ones of the same run are joined until each group
    holds 100 (min_group_size(0.99)); a short remainder goes to the group before it."""
    from bench.stats.intervals import merged, min_group_size

    need = min_group_size(0.99)
    groups = [np.arange(n, dtype=float) for n in (60, 60, 60, 60, 130, 50, 30)]
    assert [g.size for g in merged(groups, 0.99)] == [120, 120, 210]
    assert [g.size for g in merged(groups, 0.99, ["a"] * 4 + ["b"] * 3)] == [120, 120, 210]
    split = merged(groups, 0.99, ["a"] * 5 + ["b"] * 2)  # runs never share a group
    assert [g.size for g in split] == [120, 120, 130, 80] and need == 100  # b too short: no p99 of its own
    assert [g.size for g in merged([np.ones(300)] * 3, 0.99)] == [300, 300, 300]  # long rounds stay


def test_round_spread_leaves_out_the_extreme_tenth_from_ten_rounds():
    """Below 10 rounds the full range; from 10, the highest and lowest tenth left out: one slow
    round in twelve is the interval's to hold, not a reason to call the rounds in disagreement."""
    from bench.stats.summary import round_spread

    assert round_spread([1.0, 1.1, 1.3]) == pytest.approx(0.3 / 1.1)
    twelve = [1.0] * 11 + [1.5]
    assert round_spread(twelve) == 0.0 and round_spread(twelve[:8] + [1.5]) == pytest.approx(0.5)
    assert round_spread([0.7] + [1.0] * 10 + [1.5]) == 0.0
