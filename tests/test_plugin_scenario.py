"""A scenario from outside bench/ (tests/plugin_scenario.py), planned, run and shown end to end."""

from __future__ import annotations

import pytest

from bench import Measure, Plan, load, run_plan
from bench.cli import main
from bench.errors import UsageError

SPEC = "plugin_scenario:BURSTS"
QUICK = Measure(warmup_s=0.05, min_duration_s=0.3, max_duration_s=0.6, min_samples=40, target_ci=0.05)


def test_a_plugin_scenario_runs_end_to_end(tmp_path, capsys):
    from plugin_scenario import BURST

    plan = Plan.from_grid(models=["tiny-bert"], scenarios=[SPEC], seq_lens=[16], n_models=3, measure=QUICK)
    (cell,) = plan.cells
    assert cell.scenario == SPEC and (cell.n_models, cell.workers_per_model) == (1, 1)  # the plug-in's plan()
    run_dir = run_plan(plan, out=tmp_path, progress=False)
    row = load(run_dir).iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["samples"] >= 40 and row["bursts"] >= 40 // BURST
    assert row["burst_ms_p50"] > BURST * row["latency_ms_p50"] * 0.5
    assert row["cosine"] > 0.9999  # the worker's standard preparation ran (accuracy)
    assert main(["show", str(run_dir), "--format", "md"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "bursts" in header and "burst ms p50" in header  # the plug-in's columns in the table


def test_a_plugin_that_is_not_a_scenario_is_one_clear_error():
    with pytest.raises(UsageError, match="is a dict, not a bench.scenarios.base.Scenario"):
        Plan.from_grid(models=["tiny-bert"], scenarios=["plugin_scenario:__dict__"])
    with pytest.raises(UsageError, match="cannot load scenario"):
        Plan.from_grid(models=["tiny-bert"], scenarios=["no_such_module:X"])
