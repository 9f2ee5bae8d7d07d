"""The CUDA target. Tests marked `cuda` need a GPU and are skipped without one."""

from __future__ import annotations

import pytest

from bench import Measure, Plan, load, run_plan
from bench.errors import UsageError
from bench.targets import cuda as cuda_mod
from bench.targets import get as get_target

QUICK = Measure(rounds=1, warmup_s=0.2, min_duration_s=0.3, max_duration_s=0.6, min_samples=20, target_ci=0.05, trim_s=0.05)


def test_unavailable_cuda_gives_the_exact_reason():
    import torch

    a = get_target("cuda").availability()
    if torch.cuda.is_available():
        assert a.ok
    elif torch.version.cuda is None:
        assert not a.ok and "CPU-only build" in a.reason
    else:
        assert not a.ok and "is_available() is False" in a.reason


def test_defaults_and_cudagraphs_concurrency():
    cells = Plan.from_grid(models=["tiny-bert"], targets=["cuda"], compilers=["eager", "inductor", "cudagraphs"],
                           scenarios=["latency", "throughput"]).cells
    assert {(c.n_models, c.workers_per_model) for c in cells} == {(1, 1)}
    assert Plan.from_grid(models=["tiny-bert"], targets=["cuda"]).cells[0].compiler == "eager"
    with pytest.raises(UsageError, match="cudagraphs runs one request at a time per process"):
        Plan.from_grid(models=["tiny-bert"], targets=["cuda"], compilers=["cudagraphs"],
                       scenarios=["throughput"], workers_per_model=2)


def test_model_copies_spread_over_visible_gpus(monkeypatch):
    target = get_target("cuda")
    cell = Plan.from_grid(models=["tiny-bert"], targets=["cuda"], scenarios=["throughput"], n_models=3).cells[0]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(cuda_mod, "_gpu_count", lambda: 2)
    assert [target.worker_env(cell, i) for i in range(3)] == [
        {"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}, {"CUDA_VISIBLE_DEVICES": "0"}]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert [target.worker_env(cell, i)["CUDA_VISIBLE_DEVICES"] for i in range(3)] == ["3", "5", "3"]
    monkeypatch.setattr(cuda_mod, "_gpu_count", lambda: 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert target.worker_env(cell, 1) == {}


@pytest.mark.cuda
def test_cuda_compilers_end_to_end(tmp_path):
    plan = Plan.from_grid(models=["tiny-bert"], targets=["cuda"], compilers=["eager", "inductor", "cudagraphs"],
                          scenarios=["latency"], measure=QUICK)
    plan.cells.extend(Plan.from_grid(models=["tiny-bert"], targets=["cuda"], scenarios=["throughput"],
                                     n_models=2, measure=QUICK).cells)
    df = load(run_plan(plan, out=tmp_path, progress=False))
    assert set(df["status"]) <= {"ok", "unstable"}, df[["compiler", "scenario", "status", "error"]]
    assert (df["accelerator"] == "cuda").all() and df["device_name"].str.len().gt(0).all()
    assert (df["device_memory_gib"] > 0).all() and df["cuda_version"].notna().all()
    assert (df["cosine"] > 0.999).all()


@pytest.mark.cuda
def test_sync_waits_for_the_device():
    import torch

    x = torch.randn(4096, 4096, device="cuda")
    for _ in range(20):
        x = (x @ x) / 4096
    get_target("cuda").sync()
    assert torch.cuda.current_stream().query()  # nothing left in flight after the target's sync


@pytest.mark.cuda
def test_tf32_is_off_inside_the_worker_even_when_the_model_turns_it_on(tmp_path):
    """fp32 means fp32: the model's build turns TF32 on for matmuls and cuDNN, and every call
    checks it is off again (it raises otherwise, which fails the cell)."""

    from bench import UserModel
    from tests.support.scenario_helpers import no_tf32_model

    plan = Plan.from_grid(models=[UserModel("no-tf32", no_tf32_model)], targets=["cuda"], scenarios=["latency"],
                          measure=QUICK)
    row = load(run_plan(plan, out=tmp_path, progress=False)).iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["accelerator"] == "cuda"


@pytest.mark.cuda
def test_training_steps_on_a_gpu_are_timed_by_events_with_device_memory(tmp_path):
    """issue 26: -s train on CUDA, eager and inductor, fp32 and bf16 autocast."""
    plan = Plan.from_grid(models=["tiny-bert"], targets=["cuda"], compilers=["eager", "inductor"],
                          scenarios=["train"], batch_sizes=[8], precisions=["fp32", "amp-bf16"], measure=QUICK)
    df = load(run_plan(plan, out=tmp_path, progress=False))
    assert set(df["status"]) <= {"ok", "unstable"}, df[["compiler", "precision", "status", "error"]]
    assert (df["step_timing"] == "cuda events").all() and (df["peak_mem_allocated_mib"] > 0).all()
    assert (df["peak_mem_reserved_mib"] >= df["peak_mem_allocated_mib"]).all()
    assert (df["recompiles"] == 0).all() and (df["samples_per_s"] > 0).all()
    assert df["peak_tflops"].notna().all() or df["peak_source"].str.contains("no peak known").all()


@pytest.mark.cuda
def test_a_profiled_gpu_cell_ranks_operators_by_their_kernels_and_splits_call_from_sync(tmp_path):
    from dataclasses import replace

    plan = Plan.from_grid(models=["tiny-bert"], targets=["cuda"], scenarios=["latency"],
                          measure=replace(QUICK, profile=True))
    row = load(run_plan(plan, out=tmp_path, progress=False)).iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]
    import json

    ops = json.loads(row["profile_top_ops"])
    assert ops and all(o["on"] == "device" for o in ops)  # CUDA activity: the kernels' device time
    assert row["call_ms_p50"] > 0 and row["sync_ms_p50"] >= 0
    assert row["call_ms_p50"] + row["sync_ms_p50"] == pytest.approx(row["latency_ms_p50"], rel=0.1)
