"""Contract tests of the neuron target against the stand-in SDK in tests/stand_ins/.

No Neuron device or SDK exists in CI. The stand-in `torch_neuronx` follows the documented
signatures and records how it was called (keyword names and values, the worker's
environment at import, its command line); fake `neuron-ls` / `neuron-monitor` print the
documented JSON formats (tests/stand_ins/README.md). These tests check that trnbench
calls the SDK as documented — they say nothing about Neuron performance.

Tests that need the real SDK and a device are marked `neuron` (skipped unless /dev/neuron*
exists): run them on an inf2/trn1 with `pytest -m neuron`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bench import Measure, Plan, load, run_plan
from bench.cli import main as cli_main
from bench.errors import UsageError
from bench.stats import accuracy
from bench.targets import get as get_target
from bench.targets.neuron import flags, inventory, monitor, sdk
from tests.support.neuron import STAND_INS

QUICK = Measure(rounds=1, warmup_s=0.05, min_duration_s=0.3, max_duration_s=0.6, min_samples=20, target_ci=0.05, trim_s=0.05)
ARGS = ["--auto-cast=matmult", "--auto-cast-type=bf16", "--optlevel=2", "--model-type=transformer"]


def _plan(**kw) -> Plan:
    base = dict(models=["tiny-bert"], targets=["neuron"], compilers=["trace"], measure=QUICK)
    base.update(kw)
    return Plan.from_grid(**base)


# -- the trace flow end to end -------------------------------------------------------------


def test_trace_run_calls_the_sdk_as_documented_and_caches(host, tmp_path):
    cache = tmp_path / "cache"
    plan = _plan(scenarios=["latency", "throughput"], compiler_args=ARGS)
    lat, tp = sorted(plan.cells, key=lambda c: c.scenario)
    # defaults from the recorded neuron-ls of an inf2.xlarge (2 free NeuronCores)
    assert (lat.n_models, lat.workers_per_model) == (1, 1)
    assert (tp.n_models, tp.workers_per_model) == (2, 2)

    df = load(run_plan(plan, out=tmp_path / "r1", cache_dir=cache, progress=False))
    assert set(df["status"]) <= {"ok", "unstable"}, df[["scenario", "status", "error"]]

    # exactly one compile for both cells (same artifact), with the documented keywords
    traces = host.events("trace")
    assert len(traces) == 1
    call = traces[0]
    assert call["n_positional"] == 2  # trace(func, example_inputs, **kwargs)
    assert call["positional"][1] == [{"shape": [1, 32], "dtype": "torch.int64"}] * 2
    assert set(call["kwargs"]) == {"compiler_workdir", "compiler_args"}
    artifact = Path(df.iloc[0]["artifact"])
    workdir = Path(call["kwargs"]["compiler_workdir"])
    assert workdir.name == "compiler" and workdir.parent.name.startswith(artifact.name)  # tmp dir, then renamed
    # the user's flags verbatim, then neuronx-cc's log pointed into the artifact's compiler dir
    assert call["kwargs"]["compiler_args"] == [*ARGS, f"--logfile={workdir / 'log-neuron-cc.txt'}"]
    assert (artifact / "compiler" / "log-neuron-cc.txt").is_file()  # the compiler log beside the artifact
    assert (artifact / "compiler" / "command.txt").is_file()
    # the compiler's copies of the graph and the weights are gone: model.pt holds them
    assert not list(artifact.rglob("*.neff")) and not list(artifact.rglob("*.hlo"))
    assert not list(artifact.rglob("*.npy")) and not list(artifact.rglob("weights"))
    record = json.loads((artifact / "compile.json").read_text())
    assert record["kwargs"]["compiler_args"][:-1] == ARGS and record["versions"]["torch_neuronx"] == "0.0.0+standin"
    assert record["removed_from_workdir"]["files"] >= 3 and record["removed_from_workdir"]["bytes"] > 10_000
    key = json.loads((artifact / "key.json").read_text())
    assert key["compiler_args"] == ARGS and key["versions"]["neuronx_cc"] == "2.28.7631.0+standin"

    # one spawned process per model copy, NEURON_RT_VISIBLE_CORES set before the SDK import
    imports = host.worker_imports()
    assert sorted(e["env"]["NEURON_RT_VISIBLE_CORES"] for e in imports) == ["0", "1"]
    assert all(e["env"]["NEURON_PROCESS_TAG"].startswith(f"trnbench-{os.getpid()}-m") for e in imports)
    assert all("from multiprocessing.spawn import spawn_main" in " ".join(e["argv"]) for e in imports)
    assert len({e["pid"] for e in imports}) == 2 and all(e["ppid"] == os.getpid() for e in imports)
    assert all(e["env"]["NEURON_PLATFORM_TARGET_OVERRIDE"] is None for e in imports)  # a device is here
    assert "torch_neuronx" not in sys.modules  # the orchestrator never imports the SDK

    # the row: exact compiler args, the environment, the device facts
    rows = {r["scenario"]: r for _, r in df.iterrows()}
    assert rows["latency"]["compiler_args"] == " ".join(ARGS)
    assert not bool(rows["latency"]["cache_hit"])
    assert rows["latency"]["compile_s"] > 0
    assert bool(rows["throughput"]["cache_hit"]) is True
    for r in rows.values():
        assert r["accelerator"] == "neuron" and r["neuron_ls_format"] == "--json-output"
        assert (r["device_count"], r["neuron_cores"], r["device_memory_gib"]) == (1, 2, 32.0)
        assert r["torch_neuronx"] == "0.0.0+standin" and r["neuronx_cc"] == "2.28.7631.0+standin"
        assert r["effective_auto_cast"] == "matmult" and r["neuronx_cc_default_auto_cast"] == "none"
        assert r["cosine"] > 0.9999

    # neuron-monitor ran during both cells, filtered to this run's workers: the stand-in
    # alternates reports at 40 % and 60 % utilisation, device p50 2 ms and 3 ms; a foreign
    # runtime (100 %, 8 GiB, 5 hardware errors) shares the host and must not count
    config = json.loads((tmp_path / "neuron-monitor-config.json").read_text())
    assert config["neuron_runtimes"][0]["tag_filter"] == f"^trnbench-{os.getpid()}-"
    assert {m["type"] for m in config["neuron_runtimes"][0]["metrics"]} >= {"execution_stats", "neuroncore_counters"}
    for r in rows.values():
        n = int(r["neuron_monitor_reports"])
        first, second = (n + 1) // 2, n // 2  # the stream starts with report a
        assert r["neuroncore_util_pct"] == pytest.approx((40 * first + 60 * second) / n, abs=0.01)
        assert r["device_latency_ms_p50"] == pytest.approx((2.0 * first + 3.0 * second) / n)
        assert r["runtime_latency_ms_p50"] == pytest.approx((3.0 * first + 4.0 * second) / n)
        assert r["host_overhead_ms_p50"] == pytest.approx(r["latency_ms_p50"] - r["device_latency_ms_p50"])
        # explained, not only subtracted: the call (the traced model returns when the device is
        # done) and the sync after it (a no-op for a traced model) split the request's time
        assert r["call_ms_p50"] + r["sync_ms_p50"] == pytest.approx(r["latency_ms_p50"], rel=0.05)
        assert r["host_in_call_ms_p50"] == pytest.approx(r["call_ms_p50"] - r["device_latency_ms_p50"])
        assert "inside the call beyond the device's execution" in r["host_overhead_note"]
        assert r["neuron_device_mem_gib"] == pytest.approx(1.0) and not r["neuron_errors"]
        assert r["status"] in ("ok", "unstable")

    # second run: every artifact comes from the cache, trace is not called again
    df2 = load(run_plan(plan, out=tmp_path / "r2", cache_dir=cache, progress=False))
    assert len(host.events("trace")) == 1
    assert df2["cache_hit"].astype(bool).all() and df2["compile_s"].isna().all()


def test_trace_dp_uses_data_parallel_over_the_worker_cores(host, tmp_path):
    plan = _plan(compilers=["trace-dp"], scenarios=["throughput"], batch_sizes=[4], compiler_args=["--auto-cast=matmult"])
    cell = plan.cells[0]
    assert (cell.n_models, cell.workers_per_model) == (1, 2)
    assert get_target("neuron").worker_env(cell, 0)["NEURON_RT_VISIBLE_CORES"] == "0-1"
    df = load(run_plan(plan, out=tmp_path / "r", cache_dir=tmp_path / "cache", progress=False))
    assert set(df["status"]) <= {"ok", "unstable"}, df[["status", "error"]]
    (dp,) = host.events("DataParallel")
    assert dp["dim"] == 0 and dp["set_dynamic_batching"] is False and dp["visible_cores"] == "0-1"
    (call,) = host.events("trace")
    assert call["positional"][1][0]["shape"] == [2, 32]  # compiled per core: batch 4 over 2 cores
    with pytest.raises(UsageError, match="divisible by 2"):
        _plan(compilers=["trace-dp"], scenarios=["throughput"], batch_sizes=[3])


# -- placement from neuron-ls ------------------------------------------------------------


def test_n_models_default_and_oversubscription_from_neuron_ls(host):
    host.neuron_ls("inf2.24xlarge-device0-busy.json")  # 12 cores, device 0 held by pid 424242
    cell = _plan(scenarios=["throughput"]).cells[0]
    assert cell.n_models == 10
    target = get_target("neuron")
    assert target.start_method == "spawn"
    cores = [target.worker_env(cell, i)["NEURON_RT_VISIBLE_CORES"] for i in range(cell.n_models)]
    assert cores == [str(i) for i in range(2, 12)]
    with pytest.raises(UsageError, match=r"needs 11 NeuronCore\(s\) but 10 of 12 are free.*pid 424242"):
        _plan(scenarios=["throughput"], n_models=11)
    assert _plan(scenarios=["throughput"], n_models=3).cells[0].n_models == 3


def test_no_free_core_is_a_usage_error_not_a_runtime_error(host, tmp_path):
    busy = json.loads((STAND_INS / "neuron_ls" / "inf2.xlarge.json").read_text())
    busy[0]["neuron_processes"] = [{"pid": 999999, "command": "python other.py", "neuron_runtime_version": "2.x"}]
    path = tmp_path / "busy.json"
    path.write_text(json.dumps(busy))
    host.mp.setenv("TRNBENCH_STANDIN_NEURON_LS", str(path))
    inventory.clear_cache()
    with pytest.raises(UsageError, match=r"needs 1 NeuronCore\(s\) but 0 of 2 are free.*pid 999999"):
        _plan()
    # this harness's own processes do not count as other holders
    busy[0]["neuron_processes"] = [{"pid": os.getpid(), "command": "trnbench", "neuron_runtime_version": "2.x"}]
    path.write_text(json.dumps(busy))
    inventory.clear_cache()
    assert _plan(scenarios=["throughput"]).cells[0].n_models == 2


def test_nxdi_copies_take_tp_degree_cores(host):
    host.neuron_ls("inf2.24xlarge-device0-busy.json")
    kw = dict(models=["tiny-llama"], compilers=["nxdi"], scenarios=["generate"], seq_lens=[32], output_lens=[16],
              compiler_args=["tp_degree=2"])
    cell = _plan(**kw).cells[0]
    assert (cell.n_models, cell.workers_per_model) == (1, 1)
    assert get_target("neuron").worker_env(cell, 0)["NEURON_RT_VISIBLE_CORES"] == "2-3"
    cell = _plan(**kw, n_models=5).cells[0]
    assert get_target("neuron").worker_env(cell, 4)["NEURON_RT_VISIBLE_CORES"] == "10-11"
    with pytest.raises(UsageError, match=r"needs 12 NeuronCore\(s\) but 10 of 12 are free"):
        _plan(**kw, n_models=6)


def test_logical_nc_config_on_trn2(host):
    host.neuron_ls("trn2-2devices-lnc2.json")  # 2 devices x 4 logical cores at LNC=2
    assert _plan(scenarios=["throughput"]).cells[0].n_models == 8
    for spelling in (["-lnc=1"], ["--lnc", "1"], ["--lnc=1"], ["--logical-nc-config", "1"]):
        cell = _plan(scenarios=["throughput"], compiler_args=["--target=trn2", *spelling]).cells[0]
        assert cell.n_models == 16  # the same 16 physical cores, one per logical core at LNC=1
        env = get_target("neuron").worker_env(cell, 15)
        assert env["NEURON_RT_VISIBLE_CORES"] == "15" and env["NEURON_LOGICAL_NC_CONFIG"] == "1"
    with pytest.raises(UsageError, match="trn2 and trn3 only.*NCC_EARG001"):
        _plan(compiler_args=["--target=inf2", "--lnc=2"])


def test_outputs_are_judged_at_the_auto_cast_precision():
    target = get_target("neuron")
    assert target.accuracy_dtype(_cell("trace")) == "fp32"  # SDK >= 2.27 default: --auto-cast=none
    assert target.accuracy_dtype(_cell("trace", ("--auto-cast=matmult",))) == "bf16"
    assert target.accuracy_dtype(_cell("trace", ("--auto-cast", "all", "--auto-cast-type", "fp8_e4m3"))) == "fp8"
    assert target.accuracy_dtype(_cell("trace", ("--auto-cast=matmult", "--auto-cast-type=tf32"))) == "tf32"


def test_an_auto_cast_compile_really_differs_and_is_judged_at_the_cast_precision(host, tmp_path):
    """The stand-in rounds Linear/Conv inputs and weights to bf16 under --auto-cast=matmult, as
    neuronx-cc would: tiny-resnet's outputs then miss fp32's tolerance (max abs err 2.5e-3 >
    1e-3) and meet bf16's, so the row is ok only if the harness judges at the cast precision."""
    plan = _plan(models=["tiny-resnet"], scenarios=["latency"],
                 compiler_args=["--auto-cast=matmult", "--auto-cast-type=bf16"])
    cast = load(run_plan(plan, out=tmp_path / "cast", cache_dir=tmp_path / "c", progress=False)).iloc[0]
    assert cast["status"] in ("ok", "unstable"), cast["error"]
    assert cast["effective_auto_cast"] == "matmult"
    assert cast["max_abs_err"] > accuracy.TOLERANCES["fp32"].max_rel_err and cast["cosine"] < 1.0  # really perturbed
    # judged at fp32 instead (accuracy.compare's rule, scaled by the reference's own max |ref|), the
    # same figures are outside the tolerance: the ok row rests on judging at the cast precision
    from bench import models

    card = models.card("tiny-resnet")
    import torch

    with torch.no_grad():
        ref = models.build(card)(*models.make_inputs(card, int(cast["batch_size"]), None, int(cast["image_size"])))
    fp32 = accuracy.TOLERANCES["fp32"]
    scale = max(1.0, float(ref.abs().max()))
    assert not (cast["cosine"] >= fp32.min_cosine and cast["max_abs_err"] <= fp32.max_rel_err * scale)
    exact = load(run_plan(_plan(models=["tiny-resnet"], scenarios=["latency"], compiler_args=["--auto-cast=none"]),
                          out=tmp_path / "none", cache_dir=tmp_path / "c", progress=False)).iloc[0]
    assert exact["status"] in ("ok", "unstable") and exact["max_abs_err"] < 1e-5
    fp8 = load(run_plan(_plan(models=["tiny-resnet"], scenarios=["latency"],
                              compiler_args=["--auto-cast=all", "--auto-cast-type=fp8_e4m3"]),
                        out=tmp_path / "fp8", cache_dir=tmp_path / "c", progress=False)).iloc[0]
    assert fp8["status"] in ("ok", "unstable") and fp8["max_abs_err"] > cast["max_abs_err"]  # coarser still


def test_compiler_flags_are_validated_but_kept_verbatim():
    assert flags.parse_compiler_args(["--auto-cast", "matmult", "-O3", "--model-type=transformer",
                                   "--target", "trn1", "--some-new-flag"]) == {
        "auto-cast": "matmult", "optlevel": "3", "model-type": "transformer", "target": "trn1"}
    assert flags.parse_compiler_args(["-lnc", "2", "--auto-cast-type=fp8_e4m3"]) == {
        "logical-nc-config": "2", "auto-cast-type": "fp8_e4m3"}
    with pytest.raises(UsageError, match="spells it 'matmult'"):
        flags.parse_compiler_args(["--auto-cast=matmul"])
    with pytest.raises(UsageError, match="--optlevel"):
        flags.parse_compiler_args(["--optlevel=4"])
    with pytest.raises(UsageError, match="needs a value"):
        flags.parse_compiler_args(["--target"])


# -- detection -------------------------------------------------------------------------------


def test_pypi_placeholder_package_is_named_as_such(host, tmp_path):
    host.sdk("wrong_package")
    a = get_target("neuron").availability()
    assert not a.ok
    assert "PyPI's placeholder" in a.reason and "WRONG PACKAGE" in a.reason
    assert "pip.repos.neuron.amazonaws.com" in a.reason and "DLAMI" in a.reason
    df = load(run_plan(_plan(), out=tmp_path / "r", progress=False))
    assert df.iloc[0]["status"] == "skipped" and "WRONG PACKAGE" in df.iloc[0]["error"]


def test_missing_sdk_and_missing_devices_are_both_reported(host, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "stand_ins" not in p])
    host.devices(0)
    a = get_target("neuron").availability()
    assert not a.ok
    assert "torch_neuronx is not installed" in a.reason and "no Neuron devices" in a.reason
    assert "Neuron pip repository" in a.reason


def test_sdk_without_devices_says_so_and_points_to_compile(host):
    host.devices(0)
    a = get_target("neuron").availability()
    assert not a.ok and "no Neuron devices" in a.reason
    assert "torch-neuronx 0.0.0+standin XLA flow" in a.reason and "trnbench compile" in a.reason
    host.devices(2)
    a = get_target("neuron").availability()
    assert a.ok and "XLA flow" in a.reason and "native" not in a.reason


def test_native_compilers_fail_clearly_without_torchneuron(host, tmp_path):
    with pytest.raises(UsageError, match="not to native-eager"):
        _plan(compilers=["native-eager"], compiler_args=["--auto-cast=matmult"])
    df = load(run_plan(_plan(compilers=["native-eager"]), out=tmp_path / "r", progress=False))
    row = df.iloc[0]
    assert row["status"] == "failed" and "needs TorchNeuron" in row["error"]


def test_native_sync_synchronises_the_device(monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda *a: calls.append(a))
    target = type(get_target("neuron"))()
    target.configure_cell(_cell("trace"))
    target.sync()
    assert calls == []  # a traced model returns CPU tensors: nothing to wait for
    target.configure_cell(_cell("native-compile"))
    target.sync()
    assert len(calls) == 1


def _cell(compiler, compiler_args=()):
    from bench.plan.cell import Cell

    return Cell(model="tiny-bert", target="neuron", compiler=compiler, compiler_args=tuple(compiler_args))


# -- compile on a CPU host, run on a Neuron host --------------------------------------------


def test_compile_without_devices_uses_cpu_backend_then_run_hits_the_cache(host, tmp_path, capsys):
    cache = tmp_path / "cache"
    host.devices(0)
    common = ["-m", "tiny-bert", "-t", "neuron", "-c", "trace", "-b", "2"]
    assert cli_main(["compile", *common, "--compiler-args", "--auto-cast=matmult", "--cache-dir", str(cache)]) == 2
    assert "needs --target" in capsys.readouterr().err
    args = "--target=inf2 --auto-cast=matmult"
    assert cli_main(["compile", *common, "--compiler-args", args, "--cache-dir", str(cache), "--format", "csv"]) == 0
    assert ",compiled," in capsys.readouterr().out
    (call,) = host.events("trace")
    assert call["kwargs"]["cpu_backend"] is True
    assert call["kwargs"]["compiler_args"][:2] == ["--target=inf2", "--auto-cast=matmult"]
    assert call["kwargs"]["compiler_args"][2].startswith("--logfile=")
    # the platform is set before the SDK is imported, as optimum-neuron does (inf2 -> trn1)
    assert all(e["env"]["TRNBENCH_COMPILE_ONLY"] == "1" for e in host.worker_imports())
    assert [e["env"]["NEURON_PLATFORM_TARGET_OVERRIDE"] for e in host.worker_imports()] == ["trn1"]

    host.devices(1)  # now "on the inf2": the run takes the artifact from the cache
    run_dir = tmp_path / "runs"
    code = cli_main(["run", *common, "--compiler-args", args, "--cache-dir", str(cache), "-o", str(run_dir),
                     "--duration", "0.3", "--warmup", "0.05", "--min-samples", "20", "--no-progress",
                     "--format", "csv"])
    assert code == 0
    assert len(host.events("trace")) == 1
    df = load(run_dir)
    assert bool(df.iloc[0]["cache_hit"]) and df.iloc[0]["compiler_args"] == args


# -- neuron-ls / neuron-monitor parsing --------------------------------------------------------


def test_inventory_from_documented_neuron_ls_json():
    devices = inventory.parse_neuron_ls((STAND_INS / "neuron_ls" / "trn2-2devices-lnc2.json").read_text())
    inv = inventory.Inventory(devices)
    assert (inv.nc_total, inv.lnc, inv.memory_bytes) == (8, 2, 2 * 103079215104)
    assert inv.free_cores() == list(range(8)) and inv.free_cores(1) == list(range(16))
    assert inventory.format_cores([4, 5, 6]) == "4-6" and inventory.format_cores([3]) == "3"


def test_monitor_summary_averages_distinct_reports_and_leaves_other_runtimes_out():
    a, b = (json.loads((STAND_INS / "neuron_monitor" / f"report-{x}.json").read_text()) for x in "ab")
    for rep in (a, b):
        rep["neuron_runtime_data"][0]["neuron_runtime_tag"] = "trnbench-1-m0"
    out = monitor.summarise_monitor([a, b], tag_regex="^trnbench-1-")
    assert out["neuron_monitor_reports"] == 2 and out["neuroncore_util_pct"] == 50.0  # 40 and 60
    assert out["device_latency_ms_p50"] == pytest.approx(2.5) and out["runtime_latency_ms_p99"] == pytest.approx(3.5)
    assert out["neuron_device_mem_gib"] == 1.0 and out["device_executions"] == 200
    assert out["neuron_errors"] == "" and "device_error" not in out
    assert out["neuron_monitor_excluded"] == "other-app-7"
    # without the filter the foreign runtime would count: its hardware errors fail the cell
    leaked = monitor.summarise_monitor([a, b])
    assert leaked["neuroncore_util_pct"] == 75.0 and "10 hardware error(s)" in leaked["device_error"]


# -- the real SDK (inf2 / trn1 only) ----------------------------------------------------------


@pytest.mark.neuron
def test_real_sdk_trace_tiny_bert(tmp_path):
    """On an inf2/trn1 with the Neuron SDK: compile tiny-bert with neuronx-cc and run it."""
    a = get_target("neuron").availability()
    assert a.ok, a.reason
    plan = _plan(scenarios=["latency", "throughput"], compiler_args=["--auto-cast=matmult"])
    df = load(run_plan(plan, out=tmp_path / "r", cache_dir=tmp_path / "cache", progress=False))
    assert set(df["status"]) <= {"ok", "unstable"}, df[["scenario", "status", "error"]]
    assert (df["accelerator"] == "neuron").all() and (df["neuron_cores"] >= 2).all()
    assert (df["cosine"] > 0.99).all()  # bf16 matmuls: close to fp32, not equal
    artifact = Path(df.iloc[0]["artifact"])
    assert list((artifact / "compiler").rglob("*log*"))  # neuronx-cc's log kept beside the artifact


@pytest.mark.neuron
def test_real_sdk_detection_and_neuron_ls():
    inv = inventory.neuron_ls(fresh=True)
    assert inv.devices and inv.nc_total >= 2
    probe = sdk.probe_sdk()
    assert probe.import_ok and (probe.xla or probe.native), probe


def test_neuron_cc_flags_and_compiler_args_are_part_of_the_cache_key(host, tmp_path, monkeypatch):
    """A change of NEURON_CC_FLAGS or of the compiler args is a new compile into a new directory."""
    cache = tmp_path / "cache"
    plan = _plan(scenarios=["latency"], compiler_args=ARGS)
    first = load(run_plan(plan, out=tmp_path / "r1", cache_dir=cache, progress=False)).iloc[0]
    again = load(run_plan(plan, out=tmp_path / "r2", cache_dir=cache, progress=False)).iloc[0]
    assert not bool(first["cache_hit"]) and bool(again["cache_hit"]) and again["artifact"] == first["artifact"]
    monkeypatch.setenv("NEURON_CC_FLAGS", "--retry_failed_compilation")
    flagged = load(run_plan(plan, out=tmp_path / "r3", cache_dir=cache, progress=False)).iloc[0]
    monkeypatch.delenv("NEURON_CC_FLAGS")
    other_args = load(run_plan(_plan(scenarios=["latency"], compiler_args=["--auto-cast=none"]),
                               out=tmp_path / "r4", cache_dir=cache, progress=False)).iloc[0]
    for row in (flagged, other_args):
        assert not bool(row["cache_hit"]) and row["compile_s"] > 0
    assert len({first["artifact"], flagged["artifact"], other_args["artifact"]}) == 3
    assert len(host.events("trace")) == 3  # one compile each, none for the hit
