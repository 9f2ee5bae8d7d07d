"""Rounds where the interval is wide (`round_budget_s`), and a control measured beside every
cell (`run --control MODEL`), compared as pairs by `compare`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import Measure, Plan, load, run_plan
from bench.analysis.compare import compare_runs
from bench.cli import main
from bench.execute.runner import RoundResult
from bench.plan.cell import Cell
from bench.results.store import read_rows

# -- the budget for rounds beyond the planned ones ------------------------------------------------


class _Measurer:
    """A Measurer that measures nothing: each round a fixed result, after `cost_s`."""

    def __init__(self, cost_s: float = 0.0):
        self.cost_s = cost_s
        self.measured: list[tuple[str, int]] = []

    def measure(self, items, runner):
        import time

        for unit, r in items:
            time.sleep(self.cost_s)
            self.measured.append((unit.cell.model_name, r))
            lat = np.full(20, 1_000_000, dtype=np.int64)
            yield unit, r, RoundResult({"status": "ok", "samples": 20, "latency_ms_p50": 1.0}, {
                "latency_ns": lat, "start_ns": np.arange(20, dtype=np.int64)}, elapsed_s=self.cost_s)

    def finished(self, unit):
        pass

    def end_round(self):
        pass


def _extra_rounds(tmp_path, monkeypatch, budget, cost_s=0.0):
    """Three cells of 3 planned rounds (up to 6) whose intervals stay as wide as their names
    say: which get extra rounds, in which order, within `budget`."""
    from bench.execute import runner as cell_runner
    from bench.execute.progress import NoProgress
    from bench.results.store import RunStore

    widths = {"narrow": 0.03, "wide": 0.08, "widest": 0.3}
    monkeypatch.setattr(cell_runner, "interval_width", lambda cell, have: widths[cell.model_name])
    monkeypatch.setattr(cell_runner, "wants_more", lambda cell, have: len(have) < 6)
    store = RunStore.create(tmp_path, {"name": "t", "cells": []}, {})
    m = Measure(rounds=3, max_rounds=6, round_budget_s=budget)
    units = [cell_runner.Unit(Cell(model=name, measure=m), store) for name in ("narrow", "wide", "widest")]
    measurer = _Measurer(cost_s)
    cell_runner.CellRunner(units, NoProgress()).run(measurer)
    return measurer.measured, read_rows(store.path)


def test_extra_rounds_go_to_the_widest_interval_first(tmp_path, monkeypatch):
    measured, rows = _extra_rounds(tmp_path, monkeypatch, None)
    assert measured[:9] == [(m, r) for r in range(3) for m in ("narrow", "wide", "widest")]  # planned: plan order
    assert measured[9:12] == [("widest", 3), ("wide", 3), ("narrow", 3)]  # then the widest first
    assert sorted(r["rounds"] for r in rows) == [6, 6, 6]


def test_when_the_budget_is_spent_the_rest_get_their_rows_from_the_rounds_they_have(tmp_path, monkeypatch):
    measured, rows = _extra_rounds(tmp_path, monkeypatch, 0.03, cost_s=0.02)
    assert measured[9:] == [("widest", 3), ("wide", 3)]  # 0.02 s each: the budget ran out after two
    assert {r["model"]: r["rounds"] for r in rows} == {"widest": 4, "wide": 4, "narrow": 3}


def test_a_zero_budget_still_writes_every_row_with_its_planned_rounds(tmp_path):
    m = Measure(rounds=3, max_rounds=8, round_budget_s=0.0, warmup_s=0.02, min_duration_s=0.15, min_samples=9,
                target_ci=0.0)
    plan = Plan.from_grid(models=["tiny-bert"], seq_lens=[16], batch_sizes=[1, 2], threads_per_worker=1, measure=m)
    df = load(run_plan(plan, out=tmp_path, progress=False))
    assert len(df) == 2 and list(df["rounds"]) == [3, 3]


# -- run --control ----------------------------------------------------------------------------

ARGS = ["-m", "tiny-bert", "-s", "latency,throughput", "-b", "1", "--seq-len", "16", "--duration", "0.5",
        "--warmup", "0.02", "--min-samples", "10", "--threads", "1", "--control", "tiny-distilbert",
        "--no-progress", "--format", "json"]


@pytest.fixture(scope="module")
def beside(tmp_path_factory):
    """Two runs of the same plan, each with the control's windows beside every cell."""
    out = tmp_path_factory.mktemp("beside")
    for side in ("a", "b"):
        assert main(["run", *ARGS, "--out", str(out / side)]) in (0, 1)
    return [next((out / side).iterdir()) for side in ("a", "b")]


def test_every_cell_has_the_controls_windows_beside_it_round_by_round(beside):
    rows = read_rows(beside[0])
    assert {r["scenario"] for r in rows} == {"latency", "throughput"}
    for r in rows:
        assert r["control_model"] == "tiny-distilbert" and r["rounds"] >= 10
        mine, theirs = json.loads(r["latency_ms_p50_rounds"]), json.loads(r["control_latency_ms_p50_rounds"])
        assert len(mine) == len(theirs) == r["rounds"]
        assert r["vs_control_p50_ci_low"] <= r["vs_control_p50"] <= r["vs_control_p50_ci_high"]
    lines = read_rows(beside[0], "rounds.jsonl")
    for r in rows:  # the control's window and the cell's alternate: control first in even rounds
        order = [(x["round"], x["cell_id"] == r["cell_id"]) for x in lines
                 if x["cell_id"] in (r["cell_id"], r["cell_id"] + "~control")]
        assert [mine for _, mine in order[:4]] == [False, True, True, False]
        assert all(x["control_of"] == r["cell_id"] for x in lines if x["cell_id"] == r["cell_id"] + "~control")
    raw = np.load(beside[0] / "samples" / f"{rows[0]['cell_id']}.npz")
    assert {"control_latency_ns", "control_round"} <= set(raw.files)


def test_compare_judges_each_cell_against_the_controls_windows_beside_it(beside, capsys):
    c = compare_runs(*beside)
    p50 = [r for r in c.rows if r.metric == "p50"]
    assert p50 and all("against tiny-distilbert measured beside it" in r.notes[-1] for r in p50)
    assert "tiny-distilbert, measured beside every cell" in c.shift_source and "p50" in c.shift
    assert main(["compare", str(beside[0]), str(beside[1])]) == 0
    assert "measured beside every cell" in capsys.readouterr().out


def test_a_change_beside_the_control_is_caught_and_the_same_code_is_not():
    """Synthetic pairs: B's cell 15 % slower against a control that moved with the machine."""
    from bench.analysis.beside import against_control_windows
    from bench.analysis.compare import MetricComparison
    from bench.analysis.estimate import parse_metrics

    rng = np.random.default_rng(1)
    machine_a, machine_b = rng.normal(0, 0.05, 40), rng.normal(0.1, 0.05, 40)  # B's machine 10 % slower

    def row(change: float) -> MetricComparison:
        r = MetricComparison({"model": "m"}, "p50", "ms", True, 1.0, 1.0, 1.0)
        r.control_a, r.control_b = machine_a, machine_b
        r.beside_a = rng.normal(0, 0.02, 40)
        r.beside_b = rng.normal(np.log(change), 0.02, 40)
        r.control_model = "ctrl"
        return r

    changed, same = row(1.15), row(1.0)
    shift = against_control_windows([changed, same], parse_metrics("p50"), 0.05, 0.05)
    assert changed.verdict_vs_shift == "slower" and same.verdict_vs_shift == "~"
    assert shift["p50"][0] == pytest.approx(np.exp(0.1), rel=0.05)  # what the control itself moved


@pytest.mark.parametrize("argv, message", [
    (["--control", "nope"], "unknown model 'nope'"),
    (["--control", "tiny-distilbert", "-s", "server", "--rate", "10"], "--control pairs rounds"),
    (["--control", "tiny-bert"], "every cell is of that model"),
    (["--control", "tiny-distilbert", "--executor", "ray"], "the ray executor does not do"),
])
def test_bad_control_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    code = main(["run", "-m", "tiny-bert", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_resume_keeps_the_control_the_run_was_started_with(tmp_path, capsys):
    from bench.results.store import RunStore

    plan = Plan.from_grid(models=["tiny-bert"], measure=Measure(rounds=3)).with_control("tiny-distilbert")
    store = RunStore.create(tmp_path, plan.to_dict(), {})
    assert Plan.from_dict(json.loads((store.path / "run.json").read_text())["plan"]).control == "tiny-distilbert"
    assert main(["run", "--resume", str(store.path), "--control", "tiny-vit"]) == 2
    assert "resume keeps the one the run was started with" in capsys.readouterr().err
