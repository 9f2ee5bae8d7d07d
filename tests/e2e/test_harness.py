"""End to end through the harness: plans, workers, accuracy, the results store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench import Plan, UserModel, load, run_plan
from bench.results.schema import COLUMNS, SCHEMA_VERSION
from bench.results.store import load_samples


def test_smoke_suite_runs_end_to_end_and_loads_back(tmp_path):
    plan = Plan.from_suite("smoke")
    # 3 models x 2 compilers x 2 scenarios x 2 batch sizes, and 2 training cells (tiny-bert, tiny-gpt2)
    assert len(plan.cells) == 26 and sum(c.scenario == "train" for c in plan.cells) == 2
    families = {c.model_name for c in plan.cells}
    assert families == {"tiny-bert", "tiny-vit", "tiny-gpt2"}
    run_dir = run_plan(plan, out=tmp_path, progress=False)
    df = load(run_dir)
    assert len(df) == len(plan.cells)
    assert set(df["status"]) <= {"ok", "unstable"}, df[["model", "compiler", "scenario", "status", "error"]]
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    lat = df[df.scenario == "latency"]
    assert (lat["latency_ms_p50_ci_low"] <= lat["latency_ms_p50"]).all()
    assert (lat["latency_ms_p50"] <= lat["latency_ms_p50_ci_high"]).all()
    assert (lat["samples"] >= 50).all() and (lat["duration_s"] >= 0.5).all()
    tp = df[df.scenario == "throughput"]
    assert (tp["throughput_avg"] > 0).all() and (tp["n_models"] >= 1).all()
    assert (tp["throughput_peak"] >= tp["throughput_avg"] * 0.9).all()
    jit = df[df.compiler == "jit"]
    assert jit["compile_s"].notna().any() and (jit["cosine"] > 0.9999).all()
    assert (df["first_call_ms"] > 0).all() and (df["load_s"] >= 0).all()
    assert (df["threads_per_worker"] >= 1).all()
    assert df["python"].notna().all() and df["torch"].str.startswith("2.").all()
    # raw samples: one latency per counted request
    row = df.iloc[0]
    samples = load_samples(run_dir, row["cell_id"])
    assert len(samples["latency_ns"]) == row["samples"]
    assert np.median(samples["latency_ns"]) / 1e6 == pytest.approx(row["latency_ms_p50"])
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION and len(meta["plan"]["cells"]) == len(plan.cells)
    # a folder of runs loads too
    assert len(load(tmp_path)) == len(plan.cells)


def test_perturbed_compiled_model_is_marked_inaccurate(tmp_path, quick):
    plan = Plan.from_grid(models=["tiny-bert"], targets=["tests.support.plugins:PerturbedCpu"],
                          compilers=["eager"], measure=quick)
    df = load(run_plan(plan, out=tmp_path, progress=False))
    row = df.iloc[0]
    assert row["status"] == "inaccurate"
    assert row["max_abs_err"] == pytest.approx(0.5, abs=1e-5)
    assert "differs from eager fp32" in row["error"]


def test_bf16_is_accurate_within_its_tolerance(tmp_path, quick):
    plan = Plan.from_grid(models=["tiny-vit"], compilers=["eager", "jit"], dtypes=["bf16"], measure=quick)
    df = load(run_plan(plan, out=tmp_path, progress=False))
    assert set(df["status"]) <= {"ok", "unstable"}, df[["status", "error"]]
    assert (df["cosine"] > 0.99).all() and (df["cosine"] < 1.0).all()


def test_users_own_module_runs_through_the_python_api(tmp_path, quick):
    from tests.support.plugins import small_mlp

    plan = Plan.from_grid(models=[UserModel("mlp", small_mlp)], compilers=["eager", "jit"],
                          scenarios=["latency", "throughput"], batch_sizes=[2], measure=quick)
    cache = tmp_path / "cache"
    df = load(run_plan(plan, out=tmp_path / "a", cache_dir=cache, progress=False))
    assert list(df["model"].unique()) == ["user:mlp"]
    assert set(df["status"]) <= {"ok", "unstable"}, df[["status", "error"]]
    # a user's module can change under the same name: run twice on one cache, never a hit
    again = load(run_plan(plan, out=tmp_path / "b", cache_dir=cache, progress=False))
    jit = again[again["compiler"] == "jit"]
    assert len(jit) == 2 and not jit["cache_hit"].fillna(False).astype(bool).any()
    assert (jit["compile_s"] > 0).all()


def test_jit_artifact_is_cached_across_runs(tmp_path, quick, monkeypatch):
    monkeypatch.setenv("TRNBENCH_CACHE", str(tmp_path / "cache"))
    plan = Plan.from_grid(models=["tiny-gpt2"], compilers=["jit"], measure=quick)
    first = load(run_plan(plan, out=tmp_path / "a", progress=False)).iloc[0]
    second = load(run_plan(plan, out=tmp_path / "b", progress=False)).iloc[0]
    assert not first["cache_hit"] and first["compile_s"] > 0
    assert second["cache_hit"] and pd.isna(second["compile_s"])


def test_inductor_compile_time_is_recorded_apart_from_the_first_call(tmp_path, quick):
    from tests.support.plugins import small_mlp

    plan = Plan.from_grid(models=[UserModel("mlp", small_mlp)], compilers=["inductor"], measure=quick)
    row = load(run_plan(plan, out=tmp_path, progress=False)).iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["compile_s"] > 0.1  # torch.compile's work, on the call prepare makes
    assert row["first_call_ms"] < row["compile_s"] * 1e3
    assert row["cosine"] > 0.9999


def test_keep_freed_memory_stops_the_page_faults_of_allocation_churn(tmp_path, quick):
    """Each row counts its page faults; keep_freed_memory ends them and holds for its cells only."""
    from dataclasses import replace

    from tests.support.plugins import activation_churn

    model = UserModel("churn", activation_churn)
    cells = []
    for batch, keep in ((1, False), (2, True), (4, False)):  # one worker group: the pool must restart
        measure = replace(quick, keep_freed_memory=keep)
        cells += Plan.from_grid(models=[model], batch_sizes=[batch], threads_per_worker=1, measure=measure).cells
    df = load(run_plan(Plan("churn", cells), out=tmp_path, progress=False)).set_index("batch_size")
    assert set(df["status"]) <= {"ok", "unstable"}, df[["status", "error"]]
    assert df["keep_freed_memory"].tolist() == [False, True, False]
    # 40 MiB mapped and unmapped a call by default: 10,240 fresh pages each time
    assert df.loc[1, "page_faults_per_request"] > 10_000 and df.loc[4, "page_faults_per_request"] > 10_000
    assert df.loc[2, "page_faults_per_request"] < 1_000  # the first call's pages, spread over the rest


def test_every_part_of_the_cache_key_is_a_miss_when_it_changes(tmp_path):
    """CpuTarget.prepare on one cache: the same key hits; compiler args, dtype, input shape
    and the versions each give a new compile in a new directory."""
    import torch

    from bench.plan.cell import Cell
    from bench.targets.cpu import CpuTarget

    class OtherTorch(CpuTarget):
        def versions(self):
            return {"torch": "0.0.1"}

    mod = torch.nn.Linear(4, 2).eval()

    def prep(target=None, cell=None, shape=(1, 4)):
        cell = cell or Cell(model="m", compiler="jit")
        inputs = (torch.ones(*shape),)
        key = {"card": "m", "inputs": [(tuple(t.shape), str(t.dtype)) for t in inputs]}
        return (target or CpuTarget()).prepare(mod, inputs, cell, key, tmp_path)

    first, again = prep(), prep()
    assert first.cache_hit is False and first.compile_s > 0
    assert again.cache_hit is True and again.artifact == first.artifact
    variants = {
        "compiler args": prep(cell=Cell(model="m", compiler="jit", compiler_args=("--x",))),
        # the same inputs (a token model's ids are int64 whatever the dtype): only the key's dtype differs
        "dtype": prep(cell=Cell(model="m", compiler="jit", dtype="bf16")),
        "shape": prep(shape=(2, 4)),
        "versions": prep(target=OtherTorch()),
    }
    for what, p in variants.items():
        assert p.cache_hit is False and p.compile_s > 0, what
    assert len({first.artifact, *(p.artifact for p in variants.values())}) == 5
