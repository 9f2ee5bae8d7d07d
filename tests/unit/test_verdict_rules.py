"""The verdict rule and Holm's correction at their edges (issue 17: assertions that can fail)."""

from __future__ import annotations

import math

import pytest

from bench.analysis.compare import MetricComparison, compare_runs, verdict
from bench.cli import main
from bench.stats.significance import holm
from tests.support.compare import make_run

THRESHOLD, ALPHA = 0.05, 0.05


def _row(lo: float, hi: float, p_adj: float, lower_is_better: bool = True) -> MetricComparison:
    r = MetricComparison({"model": "m"}, "p50", "ms", lower_is_better, 1.0, (lo + hi) / 2, (lo + hi) / 2)
    r.ci_low, r.ci_high, r.p_adj = lo, hi, p_adj
    return r


@pytest.mark.parametrize("lo, hi, p_adj, expected", [
    (1.04, 1.20, 0.01, "~"),  # significant, but the CI reaches inside the 5 % threshold
    (1.30, 1.40, 0.20, "~"),  # the whole CI beyond it, but not significant after Holm
    (1.06, 1.20, 0.01, "slower"),
    (0.80, 0.94, 0.01, "faster"),  # 1/1.05 = 0.952: the CI is wholly under it
    (0.80, 0.96, 0.01, "~"),
    (0.0, 1.4, 0.001, "~"),  # a CI low at or below 0 is no interval of a ratio
    (-0.1, 1.4, 0.001, "~"),
    (math.nan, 1.4, 0.001, "~"),
    # ... even where its high end alone would read "faster" (these fail without the checks)
    (0.0, 0.5, 0.001, "~"),
    (-0.1, 0.5, 0.001, "~"),
    (math.nan, 0.5, 0.001, "~"),
    (1.30, 1.40, math.nan, "~"),
])
def test_verdict_edges(lo, hi, p_adj, expected):
    assert verdict(_row(lo, hi, p_adj), THRESHOLD, ALPHA) == expected


def test_verdict_for_higher_is_better_and_relative_to_a_shift():
    assert verdict(_row(0.80, 0.90, 0.01, lower_is_better=False), THRESHOLD, ALPHA) == "slower"  # less throughput
    assert verdict(_row(1.10, 1.20, 0.01, lower_is_better=False), THRESHOLD, ALPHA) == "faster"
    # a cell 15 % slower on a run that is 10 % slower everywhere is not slower than the shift
    assert verdict(_row(1.12, 1.18, 0.01), THRESHOLD, ALPHA, shift=1.10) == "~"
    assert verdict(_row(1.20, 1.30, 0.01), THRESHOLD, ALPHA, shift=1.10) == "slower"


def test_holm_adjusts_the_smallest_p_by_the_number_of_rows():
    p = [0.01, 0.04, 0.03, 0.5, math.nan]
    adj = holm(p)
    m = 4  # NaN is not counted
    assert adj[0] == pytest.approx(min(1.0, m * 0.01))
    assert adj[2] == pytest.approx(max(m * 0.01, (m - 1) * 0.03))  # step-down, monotone
    assert adj[1] == pytest.approx(max(adj[2], (m - 2) * 0.04))
    assert adj[3] == pytest.approx(min(1.0, max(adj[1], 0.5)))
    assert math.isnan(adj[4])


def test_holm_turns_a_raw_significant_row_into_no_change(tmp_path):
    """Twenty cells; one is 10 % slower with a raw p under 0.05 and a CI that excludes 1, yet
    Holm over all rows lifts its p above alpha: its verdict is `~`, not `slower`."""
    cells = [{"scenario": "latency", "batch_size": b, "seq_len": s} for b in (1, 2, 4, 8) for s in (16, 32, 64, 96, 128)]
    a = make_run(tmp_path, "a", cells, seed=1, n=60, sigma=0.25)
    b = make_run(tmp_path, "b", [dict(c, _scale=1.10) if i == 0 else c for i, c in enumerate(cells)], seed=2, n=60,
                 sigma=0.25)
    c = compare_runs(a, b, metrics="p50", threshold=0.0)
    rows = [r for r in c.rows if r.metric == "p50"]
    target = rows[0]
    assert target.p < ALPHA and target.ci_low > 1.0, (target.p, target.ci_low)  # significant alone
    m = sum(math.isfinite(r.p) for r in rows)
    smallest = min(r.p for r in rows if math.isfinite(r.p))
    assert min(r.p_adj for r in rows) == pytest.approx(min(1.0, m * smallest))
    assert target.p_adj >= ALPHA and target.verdict == "~"


def test_inaccurate_in_b_is_broken_and_failed_in_a_is_not_a_regression(tmp_path, capsys):
    cells = [{"scenario": "latency", "batch_size": b} for b in (1, 2, 4)]
    a = make_run(tmp_path, "a", [dict(cells[0], _status="failed"), cells[1], cells[2]], seed=1)
    b = make_run(tmp_path, "b", [cells[0], dict(cells[1], _status="inaccurate"), cells[2]], seed=2)
    c = compare_runs(a, b)
    broken = [k["batch_size"] for k, _ in c.broken]
    assert broken == [2]  # worked in A, inaccurate in B: the gate fails on it
    assert c.regressions == 1
    assert 1 in [k["batch_size"] for k, _ in c.not_compared] and 1 not in broken  # failed in A, fine in B
    assert main(["compare", str(a), str(b), "--fail-on-regression"]) == 1


def test_the_ratio_ci_covers_one_in_aa_pairs(tmp_path):
    """300 A/A pairs of a simulated throughput cell (two copies, 1000 requests, lognormal
    latency): the 95 % CI of B/A holds 1 for 92-99 % of pairs, for p50, p99 and throughput.
    Seeded, so the figure is exact: p50 96.0 %, p99 98.0 %, throughput 99.0 % when written."""
    cells = [{"scenario": "throughput", "batch_size": 1, "workers_per_model": 2}]
    held: dict[str, int] = {}
    total: dict[str, int] = {}
    for i in range(300):
        d = tmp_path / f"p{i}"
        c = compare_runs(make_run(d, "a", cells, seed=2 * i, n=1000), make_run(d, "b", cells, seed=2 * i + 1, n=1000))
        for r in c.rows:
            assert math.isfinite(r.ci_low) and math.isfinite(r.ci_high), r
            total[r.metric] = total.get(r.metric, 0) + 1
            held[r.metric] = held.get(r.metric, 0) + (r.ci_low <= 1.0 <= r.ci_high)
    assert set(total) == {"p50", "p99", "throughput"} and set(total.values()) == {300}
    for metric, n in total.items():
        assert 0.92 <= held[metric] / n <= 0.99, (metric, held[metric] / n)


def test_a_slow_stretch_of_consecutive_requests_widens_the_ci(tmp_path):
    """B's requests 30-50 % are 1.6x slower, one after another (a neighbour for a while): the
    design effect widens the CI and says so. The same latencies shuffled (no correlation in
    time) get no note and a narrower interval."""
    cell = {"scenario": "latency", "batch_size": 1}
    a = make_run(tmp_path, "a", [cell], seed=1, n=2000)
    stretched = make_run(tmp_path, "b1", [dict(cell, _stretch=(0.3, 0.5, 1.6))], seed=2, n=2000)
    shuffled = make_run(tmp_path, "b2", [dict(cell, _stretch=(0.3, 0.5, 1.6), _shuffle=True)], seed=2, n=2000)
    in_order = {r.metric: r for r in compare_runs(a, stretched, metrics="p50").rows}["p50"]
    mixed = {r.metric: r for r in compare_runs(a, shuffled, metrics="p50").rows}["p50"]
    assert in_order.ratio == pytest.approx(mixed.ratio, rel=1e-9)  # the same values, only their order differs
    assert any("correlated in time" in n for n in in_order.notes), in_order.notes
    assert not any("correlated in time" in n for n in mixed.notes), mixed.notes
    width = math.log(in_order.ci_high / in_order.ci_low)
    assert width > 1.5 * math.log(mixed.ci_high / mixed.ci_low)
