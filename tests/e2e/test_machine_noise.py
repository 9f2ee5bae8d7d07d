"""The machine's own movement in a run (bench.analysis.noise), from synthetic round lines whose
shared and per-cell movements are known, and the line `run` prints above its table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.analysis.noise import machine_noise
from bench.cli import main


def _run(shared_sd: float, own_sd: float, cells: int = 8, rounds: int = 6, seed: int = 0,
         persist: int = 2) -> list[dict]:
    """Round lines as a run writes them (round 1 of every cell, then round 2, ...): the machine's
    speed is a log-normal level that holds for `persist` consecutive rounds, whichever cell they
    are, times each round's own noise."""
    rng = np.random.default_rng(seed)
    lines, level = [], 0.0
    for r in range(rounds):
        for c in range(cells):
            i = r * cells + c
            if i % persist == 0:
                level = rng.normal(0, shared_sd)
            value = (1.0 + c) * math.exp(level + rng.normal(0, own_sd))
            lines.append({"cell_id": f"c{c}", "round": r, "scenario": "latency", "status": "ok",
                          "latency_ms_p50": value, "latency_iqr_ratio": 0.05})
    return lines


@pytest.mark.parametrize("shared", [0.03, 0.10])
def test_the_movement_shared_by_back_to_back_rounds_is_what_is_stated(shared):
    """A level that holds for 8 rounds in a row: 7 of 8 back-to-back pairs share it."""
    moved = [machine_noise([], _run(shared, 0.01, cells=10, rounds=12, seed=s, persist=8)).moved for s in range(20)]
    assert np.median(moved) == pytest.approx(shared * math.sqrt(7 / 8), rel=0.25)


def test_rounds_that_move_alone_are_not_the_machines():
    rows = [{"cell_id": f"c{c}", "status": "unstable", "stability": "rounds differ by 30%"} for c in range(10)]
    noise = machine_noise(rows, _run(0.0, 0.08, cells=10, rounds=12))
    assert noise.moved < 0.03 and abs(noise.correlation) < 0.3
    assert noise.unstable == 10 and noise.explained == 0  # unstable, but not for the machine's movement


def test_too_few_rounds_say_nothing():
    assert machine_noise([], _run(0.05, 0.01, cells=2, rounds=2)) is None


def test_unstable_cells_are_counted_for_the_machine_only_when_nothing_else_flagged_them():
    rounds = _run(0.10, 0.005, cells=8, rounds=6)
    rows = [{"cell_id": f"c{c}", "status": "unstable", "error": "rounds differ by 30%; p50 95% CI is +-9%",
             "stability": "rounds differ by 30%; p50 95% CI is +-9%"} for c in range(6)]
    rows.append({"cell_id": "c6", "status": "unstable", "host_busy": "host busy: other processes used 1.2 of 2 cores",
                 "stability": "host busy: other processes used 1.2 of 2 cores", "error": "host busy"})
    rows.append({"cell_id": "c7", "status": "unstable", "stability": "IQR is 40% of the median",
                 "error": "IQR is 40% of the median"})
    for line in rounds:  # c7's rounds were wide inside: its own spread, not the machine's
        if line["cell_id"] == "c7":
            line["latency_iqr_ratio"] = 0.4
    noise = machine_noise(rows, rounds)
    assert noise.unstable == 8 and noise.explained == 6
    assert "6 of 8 unstable cells are unstable for that alone" in noise.line()


def test_run_prints_the_machine_line_above_the_table(tmp_path, capsys):
    argv = ["run", "-m", "tiny-bert", "-s", "latency", "-b", "1,2", "--seq-len", "16", "--duration", "0.3",
            "--warmup", "0.02", "--min-samples", "12", "--rounds", "4", "--max-rounds", "4", "--threads", "1",
            "--no-progress", "--out", str(tmp_path)]
    assert main(argv) in (0, 1)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("this machine's speed moved ") and "between rounds" in out[0]
    (run_dir,) = tmp_path.iterdir()
    assert main(["show", str(run_dir), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) and captured.err.startswith("this machine's speed moved")  # json stays clean
