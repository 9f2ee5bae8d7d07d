"""Rounds, intervals over rounds, a busy host, `trnbench ab`, and the run-wide shift."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import Measure, Plan, load, run_plan
from bench.cli import main
from bench.execute.rounds import combine
from bench.plan.cell import Cell
from bench.results.store import RunStore, load_samples, read_rows
from bench.stats import intervals

ROUNDS3 = Measure(rounds=3, max_rounds=3, warmup_s=0.05, min_duration_s=0.45, min_samples=60, target_ci=0.05,
                  trim_s=0.05)


# -- intervals over rounds -----------------------------------------------------------------------


def test_the_interval_over_rounds_covers_the_process_median():
    """Lognormal requests (10 % spread) in rounds shifted by N(0, 5 %): the 95 % interval of the
    median over the rounds covers the true median in 93-98 % of 600 trials, for 3, 5 and 10 rounds."""
    rng = np.random.default_rng(7)
    for g in (3, 5, 10):
        covered = 0
        for _ in range(600):
            groups = [np.exp(rng.normal(s, 0.1, 200)) for s in rng.normal(0, 0.05, g)]
            _, lo, hi = intervals.interval(intervals.group_values(groups, 0.5))
            covered += lo <= 1.0 <= hi
        assert 0.93 <= covered / 600 <= 0.98, (g, covered / 600)


def test_fewer_than_three_rounds_give_no_interval_over_rounds():
    assert all(np.isnan(v) for v in intervals.interval(np.array([1.0, 1.1])))
    assert intervals.replicates(np.array([1.0, 1.1]), np.random.default_rng(0), 10) is None


@pytest.mark.parametrize("rounds", [10, 12])
def test_the_paired_interval_covers_and_one_stalled_round_does_not_hide_a_change(rounds):
    """A/A paired log ratios, one round in three runs stalled 2.7x on one side: the 95 %
    interval still covers 1 in 92-98 % of 1500 runs. And a real 20 % change with one of its
    rounds stalled 4x on side A (seen on this machine) stays a significant ~1.2."""
    rng = np.random.default_rng(rounds)
    hits = 0
    for _ in range(1500):
        x = rng.normal(0.0, 0.03, rounds)
        if rng.random() < 0.3:
            x[rng.integers(rounds)] += rng.choice([-1.0, 1.0])
        _, lo, hi, _ = intervals.paired_interval(x)
        hits += lo < 1.0 < hi
    assert 0.92 <= hits / 1500 <= 0.98, hits
    x = np.log(1.2) + rng.normal(0.0, 0.02, rounds)
    x[3] = np.log(1.2 / 4)
    ratio, lo, hi, p = intervals.paired_interval(x)
    assert 1.15 < lo < ratio < hi < 1.25 and p < 1e-4
    plain_lo = np.exp(x.mean() - 2.3 * x.std(ddof=1) / np.sqrt(rounds))
    assert plain_lo < 1.0  # what the untrimmed mean said: no change


def test_latency_leaves_a_core_free_and_throughput_splits_the_cores():
    from bench.targets.cpu import default_threads

    assert [default_threads(1, c) for c in (1, 2, 8)] == [1, 1, 7]
    assert [default_threads(n, 16) for n in (2, 4, 32)] == [8, 4, 1]


def test_combine_pools_requests_and_states_each_round():
    cell = Cell(model="m", scenario="latency", measure=ROUNDS3)
    rng = np.random.default_rng(0)
    results = []
    for median in (1.0, 1.2, 0.9):
        lat = (rng.lognormal(np.log(median * 1e6), 0.05, 400)).astype(np.int64)
        start = np.cumsum(lat)
        fields = {"status": "ok", "samples": 400, "warmup_samples": 10, "duration_s": 0.4,
                  "throughput_avg": 1e3 / median, "steady_window_s": 0.3, "compile_s": 1.5 if median == 1.0 else None}
        results.append((fields, {"latency_ns": lat, "start_ns": start}))
    row, samples = combine(cell, results)
    assert row["rounds"] == 3 and row["samples"] == 1200 and row["compile_s"] == 1.5
    medians = json.loads(row["latency_ms_p50_rounds"])
    assert medians == pytest.approx([1.0, 1.2, 0.9], rel=0.02)
    assert row["round_spread"] == pytest.approx(0.3, abs=0.03)
    assert row["latency_ms_p50_ci_low"] < 0.9 < 1.2 < row["latency_ms_p50_ci_high"]  # the rounds' spread
    assert list(np.unique(samples["round"])) == [0, 1, 2] and len(samples["latency_ns"]) == 1200


# -- rounds end to end -----------------------------------------------------------------------------


def test_rounds_visit_every_cell_before_the_next_round_and_keep_their_samples(tmp_path):
    plan = Plan.from_grid(models=["tiny-bert"], scenarios=["latency", "throughput"], seq_lens=[16],
                          threads_per_worker=1, measure=ROUNDS3)
    run_dir = run_plan(plan, out=tmp_path, progress=False)
    rows = read_rows(run_dir, "rounds.jsonl")
    assert [(r["scenario"], r["round"]) for r in rows] == [
        ("latency", 0), ("throughput", 0), ("latency", 1), ("throughput", 1), ("latency", 2), ("throughput", 2)]
    df = load(run_dir)
    assert set(df["status"]) <= {"ok", "unstable"}, df[["status", "error"]]
    for _, row in df.iterrows():
        assert row["rounds"] == 3 and len(json.loads(row["latency_ms_p50_rounds"])) == 3
        assert row["latency_ms_p50_ci_low"] <= row["latency_ms_p50_ci_high"]
        raw = load_samples(run_dir, row["cell_id"])
        assert sorted(set(raw["round"].tolist())) == [0, 1, 2] and len(raw["round"]) == row["samples"]
    tp = df[df.scenario == "throughput"].iloc[0]
    assert len(json.loads(tp["throughput_rounds"])) == 3 and tp["throughput_ci_low"] <= tp["throughput_avg"]


def test_more_rounds_while_the_interval_is_wide_up_to_max_rounds(tmp_path):
    wide = Measure(rounds=3, max_rounds=5, warmup_s=0.02, min_duration_s=0.15, min_samples=15, target_ci=0.0)
    tight = Measure(rounds=3, max_rounds=5, warmup_s=0.02, min_duration_s=0.15, min_samples=15, target_ci=10.0)
    for measure, expected in ((wide, 5), (tight, 3)):
        plan = Plan.from_grid(models=["tiny-bert"], seq_lens=[16], threads_per_worker=1, measure=measure)
        row = load(run_plan(plan, out=tmp_path / str(expected), progress=False)).iloc[0]
        assert row["rounds"] == expected


def test_resume_takes_back_the_rounds_a_killed_run_kept(tmp_path):
    plan = Plan.from_grid(models=["tiny-bert"], seq_lens=[16], threads_per_worker=1, measure=ROUNDS3)
    run_dir = run_plan(plan, out=tmp_path, progress=False)
    # as if killed during round 3: the row and round 3 gone, rounds 1 and 2 kept
    (run_dir / "cells.jsonl").write_text("")
    kept = (run_dir / "rounds.jsonl").read_text().splitlines()[:2]
    (run_dir / "rounds.jsonl").write_text("\n".join(kept) + "\n")
    assert main(["resume", str(run_dir), "--no-progress", "--format", "json"]) == 0
    rounds = read_rows(run_dir, "rounds.jsonl")
    assert [r["round"] for r in rounds] == [0, 1, 2]  # one new round, the first two reused
    (row,) = read_rows(run_dir)
    assert row["rounds"] == 3 and len(json.loads(row["latency_ms_p50_rounds"])) == 3


def test_a_torn_tail_is_cut_before_the_next_row(tmp_path):
    store = RunStore.create(tmp_path, {"name": "t", "cells": []}, {})
    store.append({"cell_id": "a", "x": 1})
    with open(store.path / "cells.jsonl", "a", encoding="utf-8") as f:
        f.write('{"cell_id": "b", "x"')  # a kill mid-write
    store.append({"cell_id": "c", "x": 3})
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no torn-row warning: the fragment is gone
        assert [r["cell_id"] for r in read_rows(store.path)] == ["a", "c"]


@pytest.mark.parametrize("how", ["resume", "run --resume"])
def test_a_torn_last_row_then_resume_records_every_planned_cell_once(tmp_path, capsys, how):
    """The issue's repro: a 3-cell run killed while writing its second row (row 1 whole, half of
    row 2), then resumed through the CLI: every planned cell exactly once, the torn fragment
    gone, and no warning on the next read."""
    import warnings

    argv = ["-m", "tiny-bert", "-s", "latency", "-b", "1,2,4", "--seq-len", "16", "--duration", "0.15",
            "--warmup", "0.02", "--min-samples", "10", "--rounds", "1", "--no-progress", "--format", "json"]
    assert main(["run", *argv, "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    lines = (run_dir / "cells.jsonl").read_text().splitlines()
    (run_dir / "cells.jsonl").write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    args = ["resume", str(run_dir)] if how == "resume" else ["run", "--resume", str(run_dir)]
    assert main([*args, "--no-progress", "--format", "json"]) == 0
    capsys.readouterr()
    planned = [c["cell_id"] for c in json.loads((run_dir / "run.json").read_text())["plan"]["cells"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn or glued line would warn here
        rows = read_rows(run_dir)
    assert sorted(r["cell_id"] for r in rows) == sorted(planned) and len(planned) == 3
    assert all(json.loads(line) for line in (run_dir / "cells.jsonl").read_text().splitlines())


# -- a busy host ---------------------------------------------------------------------------------


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_cell_measured_under_a_cpu_hog_is_not_ok_and_says_why(tmp_path):
    m = Measure(rounds=1, warmup_s=0.2, min_duration_s=1.0, max_duration_s=1.5, min_samples=20, busy_retries=1)
    plan = Plan.from_grid(models=["tiny-bert"], seq_lens=[16], measure=m)
    hogs = [mp.get_context("fork").Process(target=_spin, args=(20.0,), daemon=True) for _ in range(os.cpu_count() or 2)]
    for h in hogs:
        h.start()
    try:
        time.sleep(0.3)
        row = load(run_plan(plan, out=tmp_path, progress=False)).iloc[0]
    finally:
        for h in hogs:
            h.kill()
    assert row["status"] != "ok"
    # as many busy loops as cores, beside a worker that wants its own threads: the scheduler
    # shares the cores about evenly, so the others' share is near or above a half
    assert row["foreign_cpu_frac"] >= 0.4 and "host busy: other processes used" in row["error"]
    assert row["busy_retries"] == 1  # measured again once, then reported


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv,message", [
    (["run", "-m", "tiny-bert", "--rounds", "0"], "rounds must be an integer >= 1"),
    (["run", "-m", "tiny-bert", "--rounds", "-3"], "rounds must be an integer >= 1"),
    (["run", "-m", "tiny-bert", "--rounds", "two"], "--rounds must be an integer"),
    (["ab", "-m", "tiny-bert", "--b", "--not-a-flag 3"], "--b: --not-a-flag is not a run flag"),
    (["ab", "-m", "tiny-bert", "--b", "--out elsewhere"], "--b: --out is not a run flag"),
    (["ab", "-m", "tiny-bert", "--b-python", "/bin/true"], "--b-python /bin/true: not a Python with torch"),
    (["ab", "-m", "tiny-bert", "--b", "-b 1,2"], "the two sides plan different numbers of cells"),
])
def test_bad_round_and_ab_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_a_suite_with_bad_rounds_is_refused(tmp_path):
    from bench.errors import UsageError

    with pytest.raises(UsageError, match="rounds must be an integer >= 1"):
        Plan.from_suite_data({"measure": {"rounds": 0}, "sweep": [{"models": ["tiny-bert"]}]}, name="t")


# -- ab ------------------------------------------------------------------------------------------


def test_ab_a_a_calibration_prints_the_noise_floor(tmp_path, capsys):
    argv = ["ab", "-m", "tiny-bert", "--seq-len", "16", "--threads", "1", "--rounds", "4", "--duration", "0.4",
            "--warmup", "0.02", "--min-samples", "40", "-o", str(tmp_path), "--no-progress", "--metric", "p50"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "paired over 4 rounds" in out and "noise floor (p50): the widest A/A interval is" in out
    assert "recommended --threshold for this machine and plan:" in out
    (root,) = tmp_path.iterdir()
    assert json.loads((root / "ab.json").read_text())["pairs"] == 1
    a, b = load(root / "a"), load(root / "b")
    assert (a["rounds"] == 4).all() and (b["rounds"] == 4).all()
    # interleaved: A's and B's rounds alternate A B | B A | A B | B A
    ts = sorted([(r["timestamp"], "a", r["round"]) for r in read_rows(root / "a", "rounds.jsonl")]
                + [(r["timestamp"], "b", r["round"]) for r in read_rows(root / "b", "rounds.jsonl")])
    assert "".join(s for _, s, _ in ts) == "abbaabba"


def test_ab_changes_only_what_b_says(tmp_path, capsys):
    argv = ["ab", "-m", "tiny-bert", "--seq-len", "16", "--threads", "1", "--rounds", "3", "--duration", "0.3",
            "--warmup", "0.02", "--min-samples", "30", "--b", "--compiler jit", "-o", str(tmp_path), "--no-progress",
            "--metric", "p50"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "B: compiler: eager -> jit" in out and "noise floor" not in out
    (root,) = tmp_path.iterdir()
    assert set(load(root / "b")["compiler"]) == {"jit"} and set(load(root / "a")["compiler"]) == {"eager"}


def test_ab_b_python_starts_side_bs_workers_under_that_interpreter(tmp_path, capsys):
    """--b-python: side B's workers are spawned by the other environment's interpreter (here a
    wrapper that logs each start, then runs this venv's Python), side A's are not, and the ab
    directory names it."""
    log = tmp_path / "starts.log"
    python_b = tmp_path / "python-b"
    python_b.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{sys.executable}" "$@"\n')
    python_b.chmod(0o755)
    argv = ["ab", "-m", "tiny-bert", "--seq-len", "16", "--threads", "1", "--rounds", "3", "--duration", "0.3",
            "--warmup", "0.02", "--min-samples", "30", "--b-python", str(python_b), "-o", str(tmp_path / "out"),
            "--no-progress", "--metric", "p50"]
    assert main(argv) == 0
    (root,) = (tmp_path / "out").iterdir()
    a, b = load(root / "a"), load(root / "b")
    assert len(a) == len(b) == 1 and (a["status"] != "failed").all() and (b["status"] != "failed").all()
    starts = log.read_text().splitlines()
    workers = [line for line in starts if "spawn_main" in line]
    assert len(workers) == 1  # B's one worker, started once and kept over its 3 rounds; A's never
    assert any("import json, torch, bench" in line for line in starts)  # the probe that checked it
    assert json.loads((root / "ab.json").read_text())["python_b"] == str(python_b)


def test_ab_pairs_by_plan_position_whatever_order_the_rows_were_written_in(tmp_path, capsys):
    """Rows land as cells finish (a failed cell at once, the rest at the last round), so the
    file order is not the plan's: the pairs are plan positions, and a cell with no row on one
    side leaves the other pairs as they were."""
    argv = ["ab", "-m", "tiny-bert", "--seq-len", "16", "--threads", "1", "-b", "1,2", "--rounds", "3",
            "--duration", "0.2", "--warmup", "0.02", "--min-samples", "20", "-o", str(tmp_path),
            "--no-progress", "--metric", "p50", "--format", "json"]
    assert main(argv) == 0
    capsys.readouterr()
    (root,) = tmp_path.iterdir()
    for side, keep in (("a", slice(None, None, -1)), ("b", slice(0, 1))):  # A reversed; B's last row lost
        path = root / side / "cells.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[keep]))
    assert [r["batch_size"] for r in read_rows(root / "a")] == [1, 2]
    from bench.analysis.paired import compare_paired

    c, _ = compare_paired(root / "a", root / "b", metrics="p50")
    assert [r.key["batch_size"] for r in c.rows] == [1] and not any("B:" in n for n in c.rows[0].notes)
    assert [(k["batch_size"], why) for k, why in c.not_compared] == [(2, "B: no row for this cell (run not finished)")]


# -- the run-wide shift in separate runs --------------------------------------------------------


def test_a_control_model_is_the_yardstick_for_separate_runs(tmp_path, capsys):
    """Two cells, too few for a run-wide shift: B's machine ran 15 % faster and the changed
    model does 15 % more work, so B/A alone reads ~0.98. Against the unchanged control it is
    x1.15 and slower; the control itself is not judged; an unknown control is exit 2."""
    import tests.support.compare as h

    a = h.make_run(tmp_path, "a", [{"model": "ctrl"}, {"model": "enc"}], seed=1)
    b = h.make_run(tmp_path, "b", [{"model": "ctrl"}, {"model": "enc", "_scale": 1.15}], seed=2, scale=0.85)
    from bench.analysis.compare import compare_runs

    plain = compare_runs(a, b, metrics="p50")
    assert not plain.shift and plain.regressions == 0  # alone, the regression is hidden by the machine
    c = compare_runs(a, b, metrics="p50", control=["ctrl"])
    enc, ctrl = (next(r for r in c.rows if r.key["model"] == m) for m in ("enc", "ctrl"))
    assert c.shift["p50"][0] == pytest.approx(0.85, rel=0.02) and c.shift["p50"][3] == 1
    assert enc.verdict_vs_shift == "slower" and "against the control: x1.1" in enc.notes[-1]
    assert ctrl.verdict_vs_shift == "~" and c.regressions == 1
    assert main(["compare", str(a), str(b), "--metric", "p50", "--control", "ctrl", "--fail-on-regression"]) == 1
    assert "B ran 15% faster on the control (ctrl, 1 cell)" in capsys.readouterr().out
    # the same machine, no change: nothing is called slower against the control
    b0 = h.make_run(tmp_path, "b0", [{"model": "ctrl"}, {"model": "enc"}], seed=3, scale=0.85)
    assert compare_runs(a, b0, metrics="p50", control=["ctrl"]).regressions == 0
    assert main(["compare", str(a), str(b), "--control", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--control nope: no cell of that model" in err[0] and "ctrl, enc" in err[0]


def test_p99_of_rounds_of_100_requests_is_compared_over_the_rounds(tmp_path):
    """Rounds of 150 requests: too few for a bounded p99 interval inside each (~370), enough
    for each round's p99 to be its own value. One of B's three rounds met a slow stretch: the
    pooled p99 moves by half; the interval over the rounds holds that the rounds disagree,
    and the row is not a regression. The same stall in every round of B is one."""
    import tests.support.compare as h
    from bench.analysis.compare import compare_runs

    assert intervals.min_group_size(0.99) == 100 and intervals.min_group_size(0.5) == 6
    a = h.make_run(tmp_path, "a", [{"model": "m"}], seed=1, n=450, round_factors=[1.0, 1.0, 1.0])
    b = h.make_run(tmp_path, "b", [{"model": "m"}], seed=2, n=450, round_factors=[1.0, 1.0, 1.6])
    (p99,) = [r for r in compare_runs(a, b, metrics="p99").rows]
    assert p99.ratio > 1.1 and "CI over 3 (A) and 3 (B) rounds" in " ".join(p99.notes)
    assert p99.verdict == "~" and p99.ci_high / p99.ci_low > 2
    b_all = h.make_run(tmp_path, "b_all", [{"model": "m"}], seed=2, n=450, round_factors=[1.6, 1.6, 1.6])
    (p99,) = [r for r in compare_runs(a, b_all, metrics="p99").rows]
    assert p99.verdict == "slower"


def test_the_control_is_paired_round_by_round_within_each_run(tmp_path):
    """Rounds whose passes the machine slowed by up to 1.6x, alike for every cell of a run:
    each cell's interval over its rounds alone is far too wide to see a 15 % change, but
    taken relative to the control in the same round the machine cancels and the change is
    caught; with no change nothing is called slower. Without the pairing (B's control
    measured in a run of its own, its rounds in another order) the regression is lost."""
    import tests.support.compare as h
    from bench.analysis.compare import compare_runs

    machine = np.random.default_rng(7)
    fa, fb, f0 = (list(np.exp(machine.normal(0, 0.2, 5))) for _ in range(3))
    cells = [{"model": "ctrl"}, {"model": "enc"}]
    a = h.make_run(tmp_path, "a", cells, seed=1, n=1000, round_factors=fa)
    b = h.make_run(tmp_path, "b", [{"model": "ctrl"}, {"model": "enc", "_scale": 1.15}], seed=2, n=1000,
                   round_factors=fb)
    c = compare_runs(a, b, metrics="p50", control=["ctrl"])
    enc = next(r for r in c.rows if r.key["model"] == "enc")
    assert enc.ci_high / enc.ci_low > 1.3  # alone: the rounds' spread
    assert enc.verdict_vs_shift == "slower", enc.notes
    assert "paired with the control round by round (5 A, 5 B)" in enc.notes[-1]
    ratio = float(enc.notes[-1].split("x")[1].split()[0])
    assert ratio == pytest.approx(1.15, abs=0.02)
    b0 = h.make_run(tmp_path, "b0", cells, seed=3, n=1000, round_factors=f0)
    assert compare_runs(a, b0, metrics="p50", control=["ctrl"]).regressions == 0
    # the pairing is what resolves it: B's control in another run, its passes in another order
    shuffled = [fb[i] for i in (3, 0, 4, 1, 2)]
    b_mixed = h.make_run(tmp_path, "bx", [{"model": "enc", "_scale": 1.15}], seed=2, n=1000, round_factors=fb)
    ctrl_mixed = h.make_run(tmp_path, "bxc", [{"model": "ctrl"}], seed=2, n=1000, round_factors=shuffled)
    with_mixed = compare_runs(a, [b_mixed, ctrl_mixed], metrics="p50", control=["ctrl"])
    enc = next(r for r in with_mixed.rows if r.key["model"] == "enc")
    assert "no rounds to pair" in enc.notes[-1] and with_mixed.regressions == 0


def test_the_run_wide_shift_is_stated_and_taken_out_of_the_gate(tmp_path, capsys):
    import tests.support.compare as h

    cells = [{"model": f"m{i}"} for i in range(10)]
    a = h.make_run(tmp_path, "a", cells, seed=1)
    b = h.make_run(tmp_path, "b", cells, seed=2, scale=1.12)  # the machine ran 12 % slower
    b2 = h.make_run(tmp_path, "b2", cells[:9] + [{"model": "m9", "_scale": 1.3}], seed=2, scale=1.12)
    from bench.analysis.compare import compare_runs

    c = compare_runs(a, b, metrics="p50")
    assert c.shift["p50"][0] == pytest.approx(1.12, rel=0.02) and c.shift["p50"][3] == 10
    assert len(c.slower) == 10 and c.regressions == 0  # every cell slower: the machine, not a cell
    assert main(["compare", str(a), str(b), "--metric", "p50", "--fail-on-regression"]) == 0
    out = capsys.readouterr().out
    assert "B ran 12% slower across all 10 cells" in out and "`trnbench ab`" in out
    assert main(["compare", str(a), str(b), "--metric", "p50", "--fail-on-regression",
                 "--fail-on-shift", "5%"]) == 1  # unless the shift itself is gated
    c2 = compare_runs(a, b2, metrics="p50")
    assert [r.key["model"] for r in c2.rows if r.verdict_vs_shift == "slower"] == ["m9"]
    assert c2.regressions == 1
    assert Path(a).is_dir()


def test_a_busy_retry_keeps_only_the_kept_attempts_extra_rows():
    """A max-rate search measured on a busy host is measured again: the probes of the attempt
    thrown away must not stay in the results (they did: 12 probe rows for a 6-probe search)."""
    from bench.execute.rounds import measure_round
    from bench.plan.cell import Cell, Measure

    attempts = []

    def measure(record):
        n = len(attempts)
        attempts.append(n)
        for probe in range(3):
            record(f"cell-{n}", {"probe": probe, "attempt": n}, None)
        return ({"status": "ok", "host_busy": "host busy" if n == 0 else ""}, None)

    recorded = []
    fields, _ = measure_round(measure, Cell(model="m", measure=Measure(busy_retries=2)),
                              lambda c, f, s: recorded.append(f))
    assert len(attempts) == 2 and fields["busy_retries"] == 1
    assert [r["attempt"] for r in recorded] == [1, 1, 1]  # the kept attempt's probes, once
