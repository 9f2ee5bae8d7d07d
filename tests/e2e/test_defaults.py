"""Defaults the manual states (docs/measurement.md), asserted through planning and a real run (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import Plan


def test_cpu_thread_defaults_on_four_usable_cores(monkeypatch):
    import bench.targets.cpu as cpu

    monkeypatch.setattr(cpu, "usable_cpus", lambda: 4)
    cells = {c.scenario: c for c in Plan.from_grid(models=["tiny-bert"], scenarios=["latency", "throughput"]).cells}
    # latency: one request in flight, every usable core but one (docs/measurement.md, "Defaults, and why")
    assert (cells["latency"].n_models, cells["latency"].workers_per_model, cells["latency"].threads_per_worker) == (1, 1, 3)
    # throughput: two copies (one per two cores), one request in flight each: the cores split over them
    assert (cells["throughput"].n_models, cells["throughput"].workers_per_model) == (2, 1)
    assert cells["throughput"].threads_per_worker == 2
    monkeypatch.setattr(cpu, "usable_cpus", lambda: 2)
    two = {c.scenario: c for c in Plan.from_grid(models=["tiny-bert"], scenarios=["latency", "throughput"]).cells}
    assert two["latency"].threads_per_worker == 1 and two["throughput"].threads_per_worker == 1


def test_the_worker_runs_with_the_planned_threads(tmp_path):
    for threads in ("1", "2"):
        out = subprocess.run([sys.executable, "-m", "bench.cli", "run", "-m", "tiny-bert", "-s", "latency", "--threads",
                              threads, "--duration", "0.2", "--warmup", "0.05", "--min-samples", "10", "--rounds", "1",
                              "--out", str(tmp_path / threads), "--no-progress", "--format", "json"],
                             capture_output=True, text=True, timeout=120)
        (row,) = json.loads(out.stdout)
        assert row["threads_per_worker"] == int(threads) and row["torch_threads"] == int(threads)


def test_settings_a_model_changes_when_it_is_built_are_set_back_for_its_cell(tmp_path):
    """A model whose construction calls torch.set_num_threads(2) still runs, and is recorded, with
    the cell's 1 thread: the target's per-cell settings come after the build."""
    from bench import UserModel, run_plan
    from bench.plan.cell import Measure
    from bench.results.store import read_rows
    from tests.support.scenario_helpers import one_thread_model

    m = Measure(rounds=1, warmup_s=0.05, min_duration_s=0.2, max_duration_s=0.5, min_samples=10)
    plan = Plan.from_grid(models=[UserModel("one-thread", one_thread_model)], scenarios=["latency"], threads_per_worker=1,
                          measure=m)
    (row,) = read_rows(run_plan(plan, tmp_path, progress=False))
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["threads_per_worker"] == 1 and row["torch_threads"] == 1


def test_the_targets_sync_is_inside_the_timed_region(tmp_path):
    """A sync that takes 5 ms: every latency (latency and server scenarios) is at least 5 ms.
    Dropping the sync from the timed region (or not calling it) fails this test."""
    from bench import run_plan
    from bench.plan.cell import Measure
    from bench.results.store import read_rows

    m = Measure(rounds=1, warmup_s=0.05, min_duration_s=0.5, max_duration_s=1.5, min_samples=20)
    plan = Plan.from_grid(models=["tiny-bert"], targets=["tests.support.plugins:SlowSyncCpu"],
                          scenarios=["latency", "server"], rates=[20.0], seq_lens=[16], measure=m)
    rows = {r["scenario"]: r for r in read_rows(run_plan(plan, tmp_path, progress=False))}
    for scenario in ("latency", "server"):
        assert rows[scenario]["status"] in ("ok", "unstable"), rows[scenario]["error"]
        assert rows[scenario]["latency_ms_p0"] >= 5.0, scenario


def test_run_exits_1_when_a_cell_is_inaccurate_or_failed(tmp_path, capsys):
    from bench.cli import main

    argv = ["-m", "tiny-bert", "-s", "latency", "--duration", "0.2", "--warmup", "0.05", "--min-samples", "10",
            "--rounds", "1", "--no-progress", "--format", "json"]
    # the stand-in target's compiled model is off by 0.5: inaccurate
    assert main(["run", *argv, "-t", "tests.support.plugins:PerturbedCpu", "--out", str(tmp_path / "a")]) == 1
    assert json.loads(capsys.readouterr().out)[0]["status"] == "inaccurate"
    assert main(["run", *argv, "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    # a compiled model that raises: failed, and exit 1 too
    assert main(["run", *argv, "-t", "tests.support.plugins:FailingCpu", "--out", str(tmp_path / "c")]) == 1
    row = json.loads(capsys.readouterr().out)[0]
    assert row["status"] == "failed" and "deliberate failure in the compiled model" in row["error"]


def test_a_hung_workers_whole_process_group_is_killed(tmp_path):
    """A forward that starts a child and hangs: after the cell timeout, the worker and the child
    it started (which would outlive a plain kill of the worker) are both gone."""
    import os
    import time
    from functools import partial

    from bench import UserModel, run_plan
    from bench.plan.cell import Measure
    from bench.results.store import read_rows
    from tests.support.plugins import hangs_with_a_child

    pidfile = tmp_path / "child.pid"
    m = Measure(rounds=1, warmup_s=0.0, min_duration_s=0.2, min_samples=1, cell_timeout_s=3.0)
    plan = Plan.from_grid(models=[UserModel("hangs-with-a-child", partial(hangs_with_a_child, str(pidfile)))],
                          measure=m)
    (row,) = read_rows(run_plan(plan, tmp_path / "out", progress=False))
    assert row["status"] == "failed" and "timed out" in row["error"]
    child = int(pidfile.read_text())
    for _ in range(50):  # the kill is asynchronous: give it up to 5 s
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the hung worker's child {child} outlived the kill")


def test_nan_outputs_and_a_shape_mismatch_are_inaccurate_rows(tmp_path):
    from bench import run_plan
    from bench.plan.cell import Measure
    from bench.results.store import read_rows

    m = Measure(rounds=1, warmup_s=0.05, min_duration_s=0.2, min_samples=10)
    plan = Plan.from_grid(models=["tiny-bert"], targets=["tests.support.plugins:NanCpu", "tests.support.plugins:ShapeCpu"],
                          seq_lens=[16], measure=m)
    rows = {r["target"]: r for r in read_rows(run_plan(plan, tmp_path, progress=False))}
    nan, shape = rows["tests.support.plugins:NanCpu"], rows["tests.support.plugins:ShapeCpu"]
    assert nan["status"] == "inaccurate" and "NaN or Inf" in nan["error"]
    assert shape["status"] == "inaccurate" and "differs from reference" in shape["error"]
