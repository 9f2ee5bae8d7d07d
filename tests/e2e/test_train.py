"""-s train: whole optimizer steps timed on real worker processes, rows a user can trust."""

from __future__ import annotations

import json
import math

import pytest

from bench.cli import main
from bench.results.store import read_rows

FAST = ["--duration", "0.3", "--warmup", "0.05", "--min-samples", "8", "--rounds", "1", "--no-progress"]


def _rows(out):
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return read_rows(run), run


def test_a_train_row_holds_steps_rates_losses_flops_and_memory(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "-m", "tiny-bert", "-s", "train", "-b", "2", "--grad-accum", "2", *FAST,
                 "--out", str(out)]) == 0
    (row,), _ = _rows(out)
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["scenario"] == "train" and row["optimizer"] == "adamw" and row["precision"] == "fp32"
    assert row["global_batch"] == 4 and row["grad_accum"] == 2 and row["dp"] == 1
    assert row["train_steps"] >= 8 and row["warmup_steps"] >= 4  # the numerics check's steps are warm-up
    assert row["step_ms_p50"] == row["latency_ms_p50"] > 0
    assert math.isclose(row["samples_per_s"], row["throughput_avg"])
    # the window's rate is not a mean of per-step rates: steps x global batch / the synced window
    assert math.isclose(row["samples_per_s"], row["train_steps"] * 4 / row["steady_window_s"], rel_tol=1e-6)
    assert math.isclose(row["tokens_per_s"], row["samples_per_s"] * 32)
    assert all(math.isfinite(row[c]) for c in ("loss_first", "loss_last", "grad_norm", "ref_loss_first"))
    assert math.isclose(row["loss_first"], row["ref_loss_first"], rel_tol=1e-5)  # cpu eager fp32 is the reference
    assert row["recompiles"] == 0 and row["peak_rss_mib"] > 50 and row["host_gap_us_mean"] >= 0
    assert row["flops_per_step"] > 0 and row["flops_analytic_per_step"] > 0 and "PaLM" in row["flops_formula"]
    assert row["tflops_achieved"] > 0
    assert row["mfu_pct"] is None or math.isnan(row["mfu_pct"])  # no peak is known for a CPU: never guessed
    assert "no peak known" in row["peak_source"]
    assert row["step_timing"] == "host cadence"


def test_a_cnn_trains_with_counted_flops_and_no_analytic_formula(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "-m", "tiny-resnet", "-s", "train", "-b", "4", "--optimizer", "sgd", *FAST, "--out", str(out)]) == 0
    (row,), _ = _rows(out)
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["optimizer"] == "sgd" and row["flops_per_step"] > 0
    assert row.get("flops_analytic_per_step") is None or math.isnan(row["flops_analytic_per_step"])
    assert row.get("tokens_per_s") is None or math.isnan(row["tokens_per_s"])


def test_a_decoder_trains_as_a_causal_lm_in_bf16_autocast(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "-m", "tiny-llama", "-s", "train", "--precision", "amp-bf16", *FAST,
                 "--out", str(out)]) == 0
    (row,), _ = _rows(out)
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["precision"] == "amp-bf16" and row["dtype"] == "fp32"
    # the loss starts near ln(vocab) for random weights, and bf16 keeps it within 2 % of fp32's
    assert abs(row["loss_first"] - math.log(1024)) < 1.0
    assert abs(row["loss_first"] - row["ref_loss_first"]) / row["ref_loss_first"] < 0.02


def test_a_wrong_loss_makes_the_row_inaccurate(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "-m", "tiny-bert", "-t", "tests.support.plugin_training:WrongLoss", "-s", "train",
                 *FAST, "--out", str(out)]) == 1  # an inaccurate cell fails the run
    (row,), _ = _rows(out)
    assert row["status"] == "inaccurate"
    assert "step 0's loss" in row["error"] and "eager fp32 on CPU" in row["error"]


def test_two_ranks_meet_through_the_elastic_launcher_on_loopback(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "-m", "tiny-bert", "-s", "train", "--dp", "2", *FAST, "--out", str(out)]) == 0
    (row,), _ = _rows(out)
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["dp"] == 2 and row["global_batch"] == 2 and row["threads_per_worker"] == 1
    ranks = json.loads(row["samples_per_s_per_rank"])
    assert len(ranks) == 2 and all(r > 0 for r in ranks)
    assert row["samples_per_s"] <= sum(ranks) * 1.01  # the slowest rank's window holds every rank's steps
    assert math.isfinite(row["loss_first"]) and row["compile_s"] is not None


@pytest.mark.slow
def test_inductor_compiles_once_and_not_inside_the_window(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "-m", "tiny-bert", "-s", "train", "-c", "inductor", *FAST, "--out", str(out)]) == 0
    (row,), _ = _rows(out)
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["recompiles"] == 0 and row["compile_s"] > 1


def _trn1(host) -> None:
    """A trn1 host with the PyTorch/XLA torch-neuronx of Neuron 2.29 (tests/stand_ins/sdk_trn1_train)."""
    from bench.targets.neuron import sdk

    host.sdk("sdk_trn1_train")
    host.instance("trn1.2xlarge")
    sdk._probe.cache_clear()


def test_the_xla_flow_steps_syncs_and_waits_as_the_neuron_docs_say(host, tmp_path):
    _trn1(host)
    out = tmp_path / "out"
    assert main(["run", "-m", "tiny-bert", "-t", "neuron", "-c", "xla", "-s", "train", *FAST, "--out", str(out)]) == 0
    (row,), _ = _rows(out)
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["compiler"] == "xla" and row["recompiles"] == 0 and row["step_timing"] == "host cadence"
    worker = [e for e in host.events() if e["event"].startswith(("xla.", "xm."))]
    steps = [e for e in worker if e["event"] == "xm.optimizer_step"]
    syncs = [e for e in worker if e["event"] == "xla.sync"]
    # every optimizer step through xm.optimizer_step, then torch_xla.sync() cuts the step's graph
    assert steps and len(steps) == len(syncs) and all(not e["barrier"] for e in steps)
    order = [e["event"] for e in worker if e["event"] in ("xm.optimizer_step", "xla.sync")]
    assert order[:4] == ["xm.optimizer_step", "xla.sync"] * 2
    assert sum(e["event"] == "xm.wait_device_ops" for e in worker) >= 2  # the window's two edges at least
    # MFU against Trainium1's FP32 peak, one NeuronCore's share (47.5 TFLOP/s a chip over 2 cores)
    assert row["peak_tflops"] == 23.75 and row["mfu_pct"] > 0 and "trainium.rst" in row["peak_source"]


def test_a_recompile_inside_the_window_makes_the_row_unstable(host, tmp_path, monkeypatch):
    _trn1(host)
    monkeypatch.setenv("TRNBENCH_STANDIN_XLA_RECOMPILE_EVERY", "7")
    out = tmp_path / "out"
    main(["run", "-m", "tiny-bert", "-t", "neuron", "-c", "xla", "-s", "train", *FAST, "--out", str(out)])
    (row,), _ = _rows(out)
    assert row["status"] == "unstable" and row["recompiles"] > 0
    assert f"{row['recompiles']} recompiles inside the measured window" in row["error"]


def test_xla_training_is_refused_on_a_neuron_2_30_stack(host, tmp_path, capsys):
    host.instance("trn1.2xlarge")  # the default stand-in SDK's torch-neuronx is not the 2.29 XLA stack
    assert main(["run", "-m", "tiny-bert", "-t", "neuron", "-c", "xla", "-s", "train", "--out",
                 str(tmp_path / "out")]) == 2
    assert "2.29 or earlier" in capsys.readouterr().err


def test_the_documented_torchrun_command_runs_two_ranks_on_loopback(tmp_path):
    """docs/training.md's multi-node form, with one node: torchrun's own c10d rendezvous on 127.0.0.1."""
    import os
    import subprocess
    import sys
    from dataclasses import asdict

    import numpy as np

    from bench.plan.cell import Cell, Measure
    from tests.support.paths import ROOT

    cell = Cell(model="tiny-bert", scenario="train", batch_size=2, seq_len=16, grad_accum=1, optimizer="sgd",
                precision="fp32", dp=2, threads_per_worker=1,
                measure=Measure(warmup_s=0.05, min_duration_s=0.2, max_duration_s=0.6, min_samples=5))
    spec = tmp_path / "cell.json"
    spec.write_text(json.dumps({"key": cell.key(), "measure": asdict(cell.measure)}))
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    # port 0: the OS's, as torchrun's --standalone sets it (torch/distributed/run.py, "localhost:0"); a
    # port picked here and bound later by torchrun could be taken in between
    proc = subprocess.run([*torchrun, "--nnodes", "1", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
                           "--rdzv-endpoint", "127.0.0.1:0", "-m", "bench.targets.train_rank",
                           "--cell", str(spec), "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in (0, 1)]
    assert len(ranks[0]["latency_ns"]) == len(ranks[1]["latency_ns"]) >= 5  # the same steps on both ranks
    assert all(np.isfinite(r["loss_last"]) for r in ranks)
