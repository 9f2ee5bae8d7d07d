"""Nothing lost: a run killed (SIGKILL) at each write boundary, then resumed, records every
planned cell exactly once, with its rounds intact.

The kill is injected by the store itself (`TRNBENCH_KILL_AT=POINT:N`, bench.results.store
`crash_point`): the N-th time the orchestrator passes POINT it kills itself, so each test
hits its boundary exactly, whatever the machine's speed. The boundaries:

- `round-line`: after a round's line in rounds.jsonl (its samples file written before it);
- `round-samples`: after a round's samples file, before its line;
- `mid-round` / `mid-row`: halfway through a line (a torn tail the next writer must cut);
- `round-line` at a cell's last round: between its last round and its row (issue 24: the
  row was never written on resume);
- `row-samples`: after a row's samples file, before the row;
- `row`: after a whole row (between cells; in a max-rate search, after a probe).

Locally every boundary of a cell with rounds is its own run + resume. A max-rate search, and
a run on Ray (the same cell runner: the driver keeps each round as its task returns it), are
killed and resumed again and again, one boundary each time, until a resume runs through.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import ROOT

# 2 cells x 3 rounds: round lines 1-2 are round 0, 3-4 round 1, 5 is cell 1's last round
ROUNDS_ARGS = ["-m", "tiny-bert", "-s", "latency", "-b", "1,2", "--seq-len", "16", "--duration", "0.15",
               "--warmup", "0.02", "--min-samples", "9", "--rounds", "3", "--max-rounds", "3",
               "--threads", "1", "--no-progress", "--format", "json"]

# A max-rate search on a model that sleeps 10 ms a request (probes are rows of their own)
SEARCH_DRIVER = """
import sys
from bench import Measure, Plan, UserModel, run_plan
from tests.support.scenario_helpers import sleepy_model
plan = Plan.from_grid(models=[UserModel("sleep10ms", sleepy_model)], scenarios=["server"],
                      find_max_rate=True, p99_bound_ms=60, n_models=1, workers_per_model=2,
                      measure=Measure(rounds=1, warmup_s=0.05, min_duration_s=0.3, max_duration_s=0.5,
                                      min_samples=15))
out, resume = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
run_plan(plan, out=out, resume=resume, progress=False)
"""


def _env(kill: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRNBENCH_KILL_AT"}
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if kill:
        env["TRNBENCH_KILL_AT"] = kill
    return env


def _cli(argv: list[str], kill: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, env=_env(kill), timeout=timeout, check=False)


def _search(out: Path, resume: Path | None = None, kill: str | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", SEARCH_DRIVER, str(out), *([str(resume)] if resume else [])]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=_env(kill), timeout=300, check=False)


def _killed(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])


def _run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if (p / "run.json").is_file()]
    return run_dir


def assert_every_cell_once(run_dir: Path) -> list[dict]:
    """Every planned cell exactly once, probes once each, no torn line; each cell's rounds
    0..n-1 once each in rounds.jsonl, with their samples, and its row pooled from all of them."""
    planned = [c["cell_id"] for c in json.loads((run_dir / "run.json").read_text())["plan"]["cells"]]
    rows = [json.loads(line) for line in (run_dir / "cells.jsonl").read_text().splitlines()]  # raises if torn
    results = [r for r in rows if r.get("search_role") != "probe"]
    assert sorted(r["cell_id"] for r in results) == sorted(planned), Counter(r["cell_id"] for r in results)
    probes = [(r["search_of"], r["rate_qps"]) for r in rows if r.get("search_role") == "probe"]
    assert len(probes) == len(set(probes)), Counter(probes)
    for r in results:
        if r.get("search_role") == "result":
            assert r["search_probes"] == sum(1 for of, _ in probes if of == r["cell_id"])
    text = (run_dir / "rounds.jsonl").read_text() if (run_dir / "rounds.jsonl").exists() else ""
    rounds = [json.loads(line) for line in text.splitlines()]
    for r in results:
        if not r.get("rounds") or r["rounds"] < 2:
            continue
        mine = [x["round"] for x in rounds if x["cell_id"] == r["cell_id"]]
        assert not rounds or sorted(mine) == list(range(r["rounds"])), (r["cell_id"], mine)
        assert r["status"] in ("ok", "unstable"), (r["status"], r["error"])
        with np.load(run_dir / "samples" / f"{r['cell_id']}.npz") as raw:
            assert sorted(set(raw["round"].tolist())) == list(range(r["rounds"]))
            assert raw["round"].size == r["samples"]
        assert len(json.loads(r["latency_ms_p50_rounds"])) == r["rounds"]
        if r.get("control_model"):  # its control's windows beside it: as many, once each
            theirs = [x["round"] for x in rounds if x["cell_id"] == r["cell_id"] + "~control"]
            assert sorted(theirs) == list(range(r["rounds"])), theirs
            assert len(json.loads(r["control_latency_ms_p50_rounds"])) == r["rounds"] and r["vs_control_p50"] > 0
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["round-line:1", "round-samples:2", "mid-round:3", "round-line:5",
                                  "row-samples:1", "mid-row:1", "row:1"])
def test_a_kill_at_each_write_boundary_then_resume_records_every_cell_once(tmp_path, kill):
    _killed(_cli(["run", *ROUNDS_ARGS, "--out", str(tmp_path)], kill=kill))
    run_dir = _run_dir(tmp_path)
    before = (run_dir / "rounds.jsonl").read_text().count("\n")
    done = _cli(["resume", str(run_dir), "--no-progress", "--format", "json"])
    assert done.returncode == 0, done.stderr[-2000:]
    rows = assert_every_cell_once(run_dir)
    assert len(rows) == 2
    kept = [json.loads(x) for x in (run_dir / "rounds.jsonl").read_text().splitlines()]
    assert len(kept) == 6 and before <= 6  # the rounds kept were taken back, not measured again
    assert "torn" not in done.stderr


@pytest.mark.slow
def test_a_kill_between_a_cell_and_its_controls_windows_then_resume_pairs_every_round_once(tmp_path):
    """`run --control`: 10 paired rounds, 20 round lines. Killed after the 5th line (mid-pair),
    then a resume killed halfway through its 3rd, then one killed after the last line (the
    row not written): the last resume writes the row from the rounds kept, each once."""
    args = ["-m", "tiny-bert", "-s", "latency", "-b", "1", "--seq-len", "16", "--duration", "0.15",
            "--warmup", "0.02", "--min-samples", "9", "--threads", "1", "--control", "tiny-distilbert",
            "--no-progress", "--format", "json"]
    _killed(_cli(["run", *args, "--out", str(tmp_path)], kill="round-line:5"))
    run_dir = _run_dir(tmp_path)
    resume = ["resume", str(run_dir), "--no-progress", "--format", "json"]
    _killed(_cli(resume, kill="mid-round:3"))
    _killed(_cli(resume, kill="round-line:13"))
    done = _cli(resume)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = assert_every_cell_once(run_dir)
    assert row["rounds"] == 10 and row["control_model"] == "tiny-distilbert"


@pytest.mark.slow
def test_a_kill_during_a_max_rate_search_then_resume_keeps_each_probe_once(tmp_path):
    """Killed after the search's first probe row, then each resume killed in turn halfway
    through a probe row and after a probe's samples file (a resume searches again from the
    start): the last resume runs through with each probe and the result once."""
    _killed(_search(tmp_path, kill="row:1"))
    run_dir = _run_dir(tmp_path)
    for kill in ("mid-row:2", "row-samples:2"):
        _killed(_search(tmp_path, resume=run_dir, kill=kill))
    done = _search(tmp_path, resume=run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = assert_every_cell_once(run_dir)
    assert sum(r["search_role"] == "result" for r in rows) == 1


@pytest.mark.slow
def test_on_ray_a_kill_at_each_boundary_then_resume_records_every_cell_once(tmp_path):
    """One run through the CLI's own local Ray instance, killed at a boundary, then resumed
    and killed at the next, ...: the Ray driver keeps every round as it comes back (the one
    cell runner, bench.execute.runner), so a resume takes the kept rounds back exactly as a
    local one does (the first run's lines stay, none measured twice); the last resume runs
    through."""
    pytest.importorskip("ray")
    ray_args = [*ROUNDS_ARGS, "-b", "1,2,4", "--executor", "ray"]
    _killed(_cli(["run", *ray_args, "--out", str(tmp_path)], kill="round-line:2"))
    run_dir = _run_dir(tmp_path)
    first = (run_dir / "rounds.jsonl").read_text()
    resume = ["resume", str(run_dir), "--no-progress", "--format", "json", "--executor", "ray"]
    for kill in ("round-samples:2", "mid-round:2", "round-line:3", "mid-row:1", "row:1"):
        _killed(_cli(resume, kill=kill))
    done = _cli(resume)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = assert_every_cell_once(run_dir)
    assert len(rows) == 3 and all(r["rounds"] == 3 for r in rows)
    lines = (run_dir / "rounds.jsonl").read_text()
    assert lines.startswith(first) and len(lines.splitlines()) == 9  # kept, then the rest once each
