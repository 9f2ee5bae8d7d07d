"""Failure is data: a broken cell becomes a `failed` row with its reason; the sweep goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import tests.support.plugins as plugins
from bench import Measure, Plan, UserModel, load, run_plan
from bench.errors import UsageError
from bench.results.store import RunStore


def _plan(factories, quick, **measure):
    cells = []
    m = Measure(**{**quick.__dict__, **measure})
    for f in factories:
        cells += Plan.from_grid(models=[UserModel(f.__name__, f)], measure=m).cells
    cells += Plan.from_grid(models=["tiny-bert"], measure=m).cells  # a good cell after the bad ones
    return Plan("failures", cells)


def test_raise_abort_hang_and_oom_each_become_a_failed_row_and_the_sweep_goes_on(tmp_path, quick):
    plan = _plan([plugins.raises, plugins.aborts, plugins.hangs, plugins.allocates], quick,
                 cell_timeout_s=8.0)
    t0 = time.monotonic()
    df = load(run_plan(plan, out=tmp_path, progress=False, worker_memory_gb=4)).set_index("model")
    assert time.monotonic() - t0 < 90
    assert df.loc["user:raises", "status"] == "failed"
    assert "deliberate failure in forward" in df.loc["user:raises", "error"]
    assert df.loc["user:aborts", "status"] == "failed"
    assert "signal SIGABRT" in df.loc["user:aborts", "error"]
    assert df.loc["user:hangs", "status"] == "failed"
    assert "timed out after 8 s" in df.loc["user:hangs", "error"]
    assert df.loc["user:allocates", "status"] == "failed"
    assert "alloc" in df.loc["user:allocates", "error"].lower() or "memory" in df.loc["user:allocates", "error"].lower()
    assert df.loc["tiny-bert", "status"] in ("ok", "unstable")


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_kill_9_mid_run_then_resume_records_every_cell_exactly_once(tmp_path):
    args = ["run", "-m", "tiny-bert,tiny-vit", "-c", "eager,jit", "-s", "latency", "-b", "1,2",
            "--duration", "0.6", "--max-duration", "0.6", "--warmup", "0.1", "--out", str(tmp_path),
            "--no-progress"]
    proc = _cli(*args, start_new_session=True)
    deadline = time.monotonic() + 90
    cells = None
    while time.monotonic() < deadline:
        runs = list(tmp_path.iterdir())
        cells = runs[0] / "cells.jsonl" if runs else None
        if cells and cells.exists() and len(cells.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run: orchestrator, forkserver, workers
    proc.wait(timeout=10)
    run_dir = cells.parent
    before = [json.loads(line)["cell_id"] for line in cells.read_text().splitlines()]
    planned = [c["cell_id"] for c in json.loads((run_dir / "run.json").read_text())["plan"]["cells"]]
    assert 3 <= len(before) < len(planned) == 8
    resumed = _cli("resume", str(run_dir), "--no-progress")
    out, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err
    after = [json.loads(line)["cell_id"] for line in cells.read_text().splitlines()]
    assert sorted(after) == sorted(planned)  # every planned cell exactly once
    assert after[: len(before)] == before


def test_resume_of_a_finished_run_records_nothing(tmp_path, quick):
    plan = Plan.from_grid(models=["tiny-bert"], measure=quick)
    run_dir = run_plan(plan, out=tmp_path, progress=False)
    run_plan(plan, resume=run_dir, progress=False)
    assert len(load(run_dir)) == 1


def test_a_run_directory_in_use_is_refused(tmp_path):
    store = RunStore.create(tmp_path, {"name": "x", "cells": []}, {})
    held = store.lock()
    try:
        with pytest.raises(UsageError, match="being written by another"):
            store.lock()
    finally:
        held.close()


def test_concurrent_runs_under_one_out_folder_do_not_collide(tmp_path):
    args = ["run", "-m", "tiny-bert", "-s", "latency", "--duration", "0.2", "--warmup", "0.05",
            "--out", str(tmp_path), "--no-progress"]
    procs = [_cli(*args) for _ in range(3)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 3
    for r in runs:
        assert len(load(r)) == 1
