"""A real Neuron host as of SDK 2.33/2.34, against the stand-ins (tests/stand_ins/README.md).

neuron-ls's two JSON forms, compiling on a CPU host, the compiler flags users and NxD
Inference write, versions and PyPI's placeholders, neuron-monitor's device latency and
errors. Each behaviour names the public source it follows in the code it tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from bench import Measure, Plan, load, run_plan
from bench.cli import main as cli_main
from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets import get as get_target
from bench.targets.neuron import flags, inventory, sdk
from tests.support.neuron import STAND_INS

QUICK = Measure(rounds=1, warmup_s=0.05, min_duration_s=0.3, max_duration_s=0.6, min_samples=20, target_ci=0.05, trim_s=0.05)
RUN = ["--duration", "0.3", "--warmup", "0.05", "--min-samples", "20", "--no-progress", "--format", "csv"]


def _plan(**kw) -> Plan:
    base = dict(models=["tiny-bert"], targets=["neuron"], compilers=["trace"], measure=QUICK)
    base.update(kw)
    return Plan.from_grid(**base)


# -- neuron-ls: --output-format json (2.34) first, --json-output before ------------------------


def test_neuron_ls_2_34_answers_in_its_new_form_and_the_row_says_which(host, tmp_path):
    host.ls_version("2.34")
    inv = inventory.neuron_ls(fresh=True)
    assert inv.format == "--output-format json" and inv.nc_total == 2
    assert inv.host["instance.instance_type"] == "inf2.xlarge"  # the new top-level fields are kept
    cell = _plan(scenarios=["throughput"]).cells[0]
    assert cell.n_models == 2  # placement works: one copy per free core
    assert get_target("neuron").worker_env(cell, 1)["NEURON_RT_VISIBLE_CORES"] == "1"
    df = load(run_plan(_plan(), out=tmp_path / "r", cache_dir=tmp_path / "c", progress=False))
    assert df.iloc[0]["neuron_ls_format"] == "--output-format json", df.iloc[0]["error"]


def test_neuron_ls_before_2_34_falls_back_to_json_output(host):
    host.ls_version("2.33")  # knows no --output-format: exits 2
    inv = inventory.neuron_ls(fresh=True)
    assert inv.format == "--json-output" and inv.nc_total == 2


def test_the_device_list_is_found_whatever_wraps_it():
    devices = json.loads((STAND_INS / "neuron_ls" / "trn2-2devices-lnc2.json").read_text())
    for wrapped in (devices, {"neuron_devices": devices}, {"system": {"ultraserver": None, "devices": devices}},
                    {"instance": {"type": "trn2.48xlarge"}, "data": [{"summary": 1}], "x": {"y": devices}}):
        found, _ = inventory.parse_neuron_ls_full(json.dumps(wrapped))
        assert [d["neuron_device"] for d in found] == [0, 1]
    with pytest.raises(ValueError, match="no list of devices"):
        inventory.parse_neuron_ls_full(json.dumps({"instance": "x"}))


def test_devices_without_an_inventory_refuse_to_plan_and_write_nothing(host, tmp_path, capsys):
    host.ls_version("none")  # neuron-ls answers neither form
    with pytest.raises(UsageError, match="1 Neuron device.*no NeuronCore inventory.*--output-format json.*exited 2"):
        _plan()
    out = tmp_path / "out"
    assert cli_main(["run", "-m", "tiny-bert", "-t", "neuron", "-c", "trace", "-o", str(out), *RUN]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "never starts a Neuron worker without NEURON_RT_VISIBLE_CORES" in err[0]
    assert not out.exists()
    host.mp.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if "stand_ins" not in p))
    inventory.clear_cache()
    with pytest.raises(UsageError, match="neuron-ls not found"):
        _plan()


def test_a_worker_never_starts_without_visible_cores(host):
    cell = _plan().cells[0]
    host.ls_version("none")  # the inventory went away after planning
    env = get_target("neuron").worker_env(cell, 0)
    assert "NEURON_RT_VISIBLE_CORES" not in env and "without NEURON_RT_VISIBLE_CORES" in env["TRNBENCH_CORE_ERROR"]


# -- compiling on a CPU host ---------------------------------------------------------------------


def test_stand_in_trace_on_cpu_needs_the_platform_set_before_import(tmp_path):
    """The stand-in settles its platform at import, as the SDK does (optimum-neuron PR #988)."""
    code = ("import torch, torch_neuronx\n"
            "m = torch.nn.Linear(2, 2)\n"
            "try:\n"
            "    torch_neuronx.trace(m, torch.ones(1, 2), compiler_args=['--target=inf2'], cpu_backend=True,\n"
            "                        compiler_workdir={!r})\n"
            "    print('traced')\n"
            "except RuntimeError as e:\n"
            "    print('refused:', e)\n").format(str(tmp_path / "wd"))
    env = dict(os.environ, PYTHONPATH=str(STAND_INS / "sdk"), TRNBENCH_DEV_GLOB=str(tmp_path / "none*"))
    env.pop("NEURON_PLATFORM_TARGET_OVERRIDE", None)
    # in tmp_path: without --logfile neuronx-cc's log lands in the working directory
    run = dict(capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    out = subprocess.run([sys.executable, "-c", code], **run)
    assert "refused: If you want to compile on CPU" in out.stdout, out.stderr
    env["NEURON_PLATFORM_TARGET_OVERRIDE"] = "trn1"
    out = subprocess.run([sys.executable, "-c", code], **run)
    assert "traced" in out.stdout, out.stderr
    assert (tmp_path / "log-neuron-cc.txt").is_file()  # where the real one leaves it


def test_platform_override_follows_optimum_neurons_map(host):
    host.devices(0)
    target = get_target("neuron")
    for given, expected in (("inf2", "trn1"), ("trn1n", "trn1"), ("trn2", "trn2"), ("trn3", "trn3")):
        cell = _plan(compiler_args=[f"--target={given}"]).cells[0]
        assert target.worker_env(cell, 0)["NEURON_PLATFORM_TARGET_OVERRIDE"] == expected
    host.mp.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")  # the user's own setting wins
    assert "NEURON_PLATFORM_TARGET_OVERRIDE" not in target.worker_env(_plan(compiler_args=["--target=inf2"]).cells[0], 0)
    host.devices(1)  # with a device the runtime knows its platform
    assert "NEURON_PLATFORM_TARGET_OVERRIDE" not in target.worker_env(_plan().cells[0], 0)


def test_trace_dp_built_on_a_cpu_host_hits_the_cache_on_the_inf2(host, tmp_path, capsys):
    cache = tmp_path / "cache"
    host.devices(0)
    common = ["-m", "tiny-bert", "-t", "neuron", "-c", "trace-dp", "-s", "throughput", "-b", "4",
              "--compiler-args", "--target=inf2 --auto-cast=matmult", "--cache-dir", str(cache)]
    cell = _plan(compilers=["trace-dp"], scenarios=["throughput"], batch_sizes=[4],
                 compiler_args=["--target=inf2"]).cells[0]
    assert cell.cores_per_model == 2  # one inf2 device: 2 NeuronCores, planned without one
    assert cli_main(["compile", *common, "--format", "csv"]) == 0
    assert ",compiled," in capsys.readouterr().out
    (call,) = host.events("trace")
    assert call["positional"][1][0]["shape"] == [2, 32]  # batch 4 over 2 cores
    host.devices(1)  # on the inf2.xlarge: NEURON_RT_VISIBLE_CORES is set now, the split is the same
    assert cli_main(["run", *common, "-o", str(tmp_path / "runs"), *RUN]) == 0
    row = load(tmp_path / "runs").iloc[0]
    assert bool(row["cache_hit"]) and row["status"] in ("ok", "unstable"), row["error"]
    assert len(host.events("trace")) == 1
    (dp,) = host.events("DataParallel")
    assert dp["visible_cores"] == "0-1"
    with pytest.raises(UsageError, match="needs --target"):
        host.devices(0)
        _plan(compilers=["trace-dp"], scenarios=["throughput"], batch_sizes=[4])


# -- compiler flags as users and NxD Inference write them --------------------------------------


def test_lnc_spellings_targets_and_families(host):
    assert flags.parse_compiler_args(["--lnc=2", "--target=trn2"]) == {"logical-nc-config": "2", "target": "trn2"}
    assert flags.parse_compiler_args(["--lnc", "1", "--target", "trn1"]) == {"logical-nc-config": "1", "target": "trn1"}
    assert flags.parse_compiler_args(["--target=trn3", "-lnc=2"])["target"] == "trn3"
    assert flags.parse_compiler_args(["--target=trn2n"])["target"] == "trn2n"
    with pytest.raises(UsageError, match="is not one of 1, 2"):
        flags.parse_compiler_args(["--lnc=3"])
    with pytest.raises(UsageError, match="NCC_EARG001"):
        flags.parse_compiler_args(["--target=trn1", "--lnc", "2"])
    host.instance("inf2.xlarge")
    assert _plan(compiler_args=["--target=trn1"]).cells[0].compiler_args == ("--target=trn1",)  # NeuronCore-v2
    with pytest.raises(UsageError, match="--target=trn2 but this host is a inf2.xlarge"):
        _plan(compiler_args=["--target=trn2"])


def test_a_bad_lnc_value_is_one_line_and_exit_2(host, tmp_path, capsys):
    out = tmp_path / "o"
    assert cli_main(["run", "-m", "tiny-bert", "-t", "neuron", "--compiler-args", "--lnc=4", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--lnc: '4' is not one of 1, 2" in err[0] and not out.exists()


# -- versions and what changed -------------------------------------------------------------------


def test_auto_cast_follows_the_installed_compiler_when_the_flag_is_absent(host, monkeypatch):
    target = get_target("neuron")
    cell = Cell(model="tiny-bert", target="neuron", compiler="trace")
    assert flags.default_auto_cast("2.28.7631.0+standin") == "none"  # Neuron 2.27+ (compiler 2.22+)
    assert flags.default_auto_cast("2.21.33363.0") == "matmult"  # before 2.27
    assert target.accuracy_dtype(cell) == "fp32"
    assert target.cell_facts(cell) == {"effective_auto_cast": "none", "neuronx_cc_default_auto_cast": "none"}
    monkeypatch.setattr(sdk, "compiler_version", lambda: "2.21.33363.0")
    assert target.accuracy_dtype(cell) == "bf16"  # judged at matmult-bf16, the old default
    assert target.cell_facts(cell)["effective_auto_cast"] == "matmult"
    cell = Cell(model="tiny-bert", target="neuron", compiler="trace", compiler_args=("--auto-cast=none",))
    assert target.accuracy_dtype(cell) == "fp32" and target.cell_facts(cell)["effective_auto_cast"] == "none"


def test_pypi_placeholders_give_no_versions(host, tmp_path):
    host.sdk("wrong_package")  # torch-neuronx 1.0 and neuronx-cc 1.0.post1, as PyPI ships them
    from bench.results import env

    assert env.package_version("neuronx-cc") == "" and env.package_version("torch-neuronx") == ""
    captured = env.capture()
    assert captured["neuronx_cc"] == "" and captured["torch_neuronx"] == ""
    assert sdk.placeholders() == ["torch-neuronx 1.0", "neuronx-cc 1.0.post1"]
    probe = sdk.probe_sdk()
    assert probe.compiler_version == "" and "ModuleNotFoundError" in probe.compiler_error  # no `neuronxcc`
    text = (STAND_INS / "wrong_package" / "torch_neuronx" / "__init__.py").read_text()
    assert text == ('raise ImportError("WRONG PACKAGE. Please install the package from Neuron Repository - '
                    'pip.repos.neuron.amazonaws.com")\n')


def test_stand_in_trace_warns_on_unknown_keywords_like_the_real_one(host):
    import torch
    import torch_neuronx

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch_neuronx.trace(torch.nn.Linear(2, 2), torch.ones(1, 2), compiler_args=["--logfile=/dev/null"],
                            compiler_workdir=str(host.tmp / "wd"), not_a_keyword=1)
    assert any("Unexpected keyword arguments: ['not_a_keyword']" in str(w.message) for w in caught)
    del sys.modules["torch_neuronx"]


def test_trn2_defaults_to_torchneuron_and_says_why(host, monkeypatch):
    host.instance("trn2.48xlarge")
    host.neuron_ls("trn2-2devices-lnc2.json")
    probe = sdk.probe_sdk()
    monkeypatch.setattr(sdk, "probe_sdk", lambda: type(probe)(**{**probe.__dict__, "native": True}))
    plan = Plan.from_grid(models=["tiny-bert"], targets=["neuron"], measure=QUICK)
    cell = plan.cells[0]
    assert cell.compiler == "native-compile"
    assert "not supported on Trn2/Trn3 from Neuron 2.34" in cell.target_notes
    monkeypatch.setattr(sdk, "probe_sdk", lambda: probe)  # only the XLA flow here
    cell = Plan.from_grid(models=["tiny-bert"], targets=["neuron"], measure=QUICK).cells[0]
    assert cell.compiler == "trace" and "native-compile replaces it" in cell.target_notes
    host.instance("inf2.xlarge")
    host.neuron_ls("inf2.xlarge.json")
    cell = Plan.from_grid(models=["tiny-bert"], targets=["neuron"], measure=QUICK).cells[0]
    assert cell.compiler == "trace" and cell.target_notes == ""


# -- NxD Inference -------------------------------------------------------------------------------


def test_nxdi_override_neuronconfig_does_not_know_is_refused(host, tmp_path, capsys):
    out = tmp_path / "o"
    code = cli_main(["run", "-m", "tiny-llama", "-t", "neuron", "-c", "nxdi", "-s", "generate", "--seq-len", "16",
                     "--output-len", "4", "--compiler-args", "tp_degre=1", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no setting 'tp_degre' (did you mean 'tp_degree'?)" in err[0]
    assert not out.exists()


def test_nxdi_keys_come_from_the_installed_package_when_there_is_one(monkeypatch):
    from bench.targets.neuron import nxdi

    keys, source = nxdi.neuron_config_keys()
    assert "tp_degree" in keys and "on_device_sampling_config" in keys and "@ 4bcdc54" in source
    monkeypatch.syspath_prepend(str(STAND_INS / "nxdi"))
    keys, source = nxdi.neuron_config_keys()
    assert source.endswith("models/config.py") and "stand_ins" in source
    assert keys == {"tp_degree", "batch_size", "seq_len", "max_context_length", "max_length", "torch_dtype",
                    "enable_bucketing", "on_device_sampling_config", "logical_nc_config"}


def test_nxdi_mistral_has_its_own_class(monkeypatch):
    from bench.targets.neuron import nxdi

    monkeypatch.syspath_prepend(str(STAND_INS / "nxdi"))
    config_cls, model_cls = nxdi.model_classes("mistral")
    assert (config_cls.__name__, model_cls.__name__) == ("MistralInferenceConfig", "NeuronMistralForCausalLM")
    for name in [m for m in sys.modules if m.startswith("neuronx_distributed_inference")]:
        del sys.modules[name]


@pytest.mark.parametrize("on_device", [False, True])
def test_nxdi_exactly_output_len_tokens_is_the_harness_doing(on_device, tmp_path, monkeypatch):
    """The stand-in adapter stops at EOS as the real one does; the harness gets exactly N tokens by
    min_new_tokens (CPU sampling) or by switching EOS off (on-device sampling, where the real
    adapter skips the logits processors), not because the stand-in never stops."""
    import torch

    from bench import models
    from bench.targets.neuron import nxdi

    monkeypatch.syspath_prepend(str(STAND_INS / "nxdi"))
    card = models.card("tiny-llama")
    hf = models.build(card).model
    ids, mask = models.make_inputs(card, 1, 8, None)
    with torch.inference_mode():
        greedy = hf.generate(ids, attention_mask=mask, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    hf.config.eos_token_id = int(greedy[0, -1])  # the model "ends" at its third token
    hf.generation_config.eos_token_id = int(greedy[0, -1])
    args = ("tp_degree=1",) + (('on_device_sampling_config={"do_sample": false}',) if on_device else ())
    cell = Cell(model="tiny-llama", compiler="nxdi", scenario="generate", seq_len=8, output_len=6, compiler_args=args)
    built = nxdi.build(card, cell, lambda: hf, tmp_path / "cache")
    gen = built["generator"]
    assert gen.extra == ({"eos_token_id": []} if on_device else {})
    ticks: list[int] = []
    assert gen(lambda: ticks.append(1)) == 6 and len(ticks) == 6
    # without what the harness passes, the same adapter stops at the first EOS (by the third token)
    plain = gen.adapter.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
    assert 1 <= plain.shape[-1] - ids.shape[-1] <= 3
    for name in [m for m in sys.modules if m.startswith("neuronx_distributed_inference")]:
        del sys.modules[name]


# -- neuron-monitor: device latency beside ours, and the device's errors ------------------------


def test_device_errors_fail_the_cell_with_them_named(host, tmp_path):
    host.mp.setenv("TRNBENCH_STANDIN_MONITOR_ERRORS", "hardware=2,numerical=1,transient=4")
    df = load(run_plan(_plan(), out=tmp_path / "r", cache_dir=tmp_path / "c", progress=False))
    row = df.iloc[0]
    assert row["status"] == "failed"
    assert "neuron-monitor reported" in row["error"] and "hardware error" in row["error"]
    assert "numerical error" in row["error"] and "transient" not in row["error"]  # ECC corrections are recoverable
    assert "transient" in row["neuron_errors"] and "hardware" in row["neuron_errors"]


def test_a_monitor_that_ignores_the_tag_filter_still_counts_only_our_runtimes(host, tmp_path):
    host.mp.setenv("TRNBENCH_STANDIN_MONITOR_IGNORE_FILTER", "1")  # the foreign runtime leaks through
    row = load(run_plan(_plan(), out=tmp_path / "r", cache_dir=tmp_path / "c", progress=False)).iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]  # its 5 hardware errors are not ours
    assert 40 <= row["neuroncore_util_pct"] <= 60 and row["neuron_monitor_excluded"] == "other-app-7"


# -- trnbench doctor ------------------------------------------------------------------------------


def test_doctor_on_a_cpu_host_says_what_a_first_run_will_do(capsys):
    assert cli_main(["doctor"]) == 0
    out = capsys.readouterr().out
    for label in ("instance", "devices", "neuron-ls", "SDK", "compiler", "NxD Inference", "neuron-monitor",
                  "neuron-bench", "cache", "target cpu", "target neuron", "check"):
        assert any(line.startswith(label) for line in out.splitlines()), label
    assert "skipped: no Neuron device" in out and "default compiler eager" in out


def test_doctor_with_a_device_checks_tiny_bert_names_aws_neuron_bench_and_bundles(host, tmp_path, capsys):
    bin_dir = tmp_path / "aws-bin"
    bin_dir.mkdir()
    fake = bin_dir / "neuron-bench"
    fake.write_text("#!/bin/sh\necho 'stand-in for AWS neuron-bench'\n")
    fake.chmod(0o755)
    host.mp.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    host.mp.setenv("TRNBENCH_CACHE", str(tmp_path / "cache"))
    host.ls_version("2.34")
    bundle = tmp_path / "doctor.tar.gz"
    assert cli_main(["doctor", "--bundle", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "answered `--output-format json`: 1 device(s), 2 NeuronCores at LNC 1, 2 free (0-1)" in out
    assert f"{fake}: AWS's own neuron-bench" in out and "a different tool from trnbench" in out
    assert "neuronx-cc 2.28.7631.0+standin: default --auto-cast none" in out
    assert "tiny-bert on neuron/trace: ok" in out or "tiny-bert on neuron/trace: unstable" in out
    import tarfile

    with tarfile.open(bundle) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()}
        read = {n: tar.extractfile(f"trnbench-doctor/{n}").read().decode() for n in names}
    assert {"doctor.txt", "neuron-ls--output-format-json.txt", "neuron-ls--json-output.txt",
            "neuron-monitor-report.json", "compile/listing.txt", "compile/log-neuron-cc.txt",
            "compile/compile.json", "pytest-neuron.txt", "environment.json"} <= names
    assert "[exit 0]" in read["neuron-ls--output-format-json.txt"]
    assert "[exit 2]" in read["neuron-ls--json-output.txt"]  # gone in 2.34
    assert json.loads(read["neuron-monitor-report.json"])["neuron_runtime_data"]
    assert "model.pt" in read["compile/listing.txt"] and "STAND-IN" in read["compile/log-neuron-cc.txt"]
    assert "-m neuron" in read["pytest-neuron.txt"]


def test_doctor_bundle_into_a_missing_directory_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli_main(["doctor", "--bundle", str(tmp_path / "no" / "such" / "b.tgz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bundle: cannot write into" in err[0]
