"""A scenario from outside bench/ (tests/support/plugin_scenario.py), planned, run and shown end to end."""

from __future__ import annotations

import pytest

from bench import Measure, Plan, load, run_plan
from bench.cli import main
from bench.errors import UsageError

SPEC = "tests.support.plugin_scenario:BURSTS"
QUICK = Measure(warmup_s=0.05, min_duration_s=0.3, max_duration_s=0.6, min_samples=40, target_ci=0.05)


def test_a_plugin_scenario_runs_end_to_end(tmp_path, capsys):
    from tests.support.plugin_scenario import BURST

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
        Plan.from_grid(models=["tiny-bert"], scenarios=["tests.support.plugin_scenario:__dict__"])
    with pytest.raises(UsageError, match="cannot load scenario"):
        Plan.from_grid(models=["tiny-bert"], scenarios=["no_such_module:X"])


# -- a plug-in load profile on two targets: in-process (cpu) and a server over HTTP ---------------

SWEEP = "tests.support.plugin_sweep:SWEEP"


def _sweep_rows(rows):
    result = [r for r in rows if r.get("search_role") == "result"]
    probes = [r for r in rows if r.get("search_role") == "probe"]
    return result, probes


def test_a_plugin_scenario_runs_on_the_cpu_target(tmp_path):
    plan = Plan.from_grid(models=["tiny-bert"], scenarios=[SWEEP], seq_lens=[16], threads_per_worker=1,
                          measure=Measure(rounds=1, warmup_s=0.02, min_duration_s=0.15, min_samples=10))
    rows = load(run_plan(plan, out=tmp_path, progress=False)).to_dict("records")
    (result,), probes = _sweep_rows(rows)
    assert sorted(p["workers_per_model"] for p in probes) == [1, 2, 4]
    assert result["status"] in ("ok", "unstable") and result["best_concurrency"] in (1, 2, 4)
    assert result["cosine"] > 0.9999  # the infer verb's preparation ran (accuracy)


def test_the_same_plugin_scenario_runs_on_the_endpoint_target(tmp_path):
    """The stand-in server (tests/support/llm_standin.py): the sweep's closed loops are its streamed requests."""
    from tests.support.endpoint import StandinProcess, run_endpoint, train_tokenizer

    tok = train_tokenizer(tmp_path / "tok")
    server = StandinProcess(first_ms=5.0, gap_ms=1.0)
    try:
        rows = run_endpoint(server.url, tok, tmp_path / "out", scenarios=(SWEEP,),
                            measure=Measure(rounds=1, warmup_s=0.05, min_duration_s=0.3, min_samples=8))
    finally:
        server.stop()
    (result,), probes = _sweep_rows(rows)
    assert sorted(p["workers_per_model"] for p in probes) == [1, 2, 4]
    assert result["status"] in ("ok", "unstable"), result["error"]
    assert result["ttft_ms_p50"] >= 5.0 and result["output_tokens_per_s"] > 0  # the stream verb's columns
    assert result["best_concurrency"] in (1, 2, 4)


def test_a_scenario_the_target_cannot_time_is_refused_by_the_target():
    with pytest.raises(UsageError, match="target cpu cannot time a streamed HTTP request"):
        from bench.scenarios.base import Scenario

        class StreamOnly(Scenario):
            name = "stream-only"
            verbs = ("stream",)

        from bench import targets

        targets.get("cpu").verb_for(StreamOnly())
