"""The train verb's rules that need no worker: peaks, the XLA refusal, numerics, derived columns."""

from __future__ import annotations

import math

import pytest

from bench.plan.cell import Cell
from bench.targets import peaks
from bench.targets.neuron.train import xla_refusal
from bench.targets.train import finish, first_steps, global_batch
from bench.targets.train_step import numerics


def _cell(**kw) -> Cell:
    base = dict(model="tiny-bert", scenario="train", batch_size=4, seq_len=64, grad_accum=2, optimizer="adamw",
                precision="fp32", dp=2)
    return Cell(**{**base, **kw})


@pytest.mark.parametrize("family, lnc, precision, want", [
    ("trn1", None, "bf16", 95.0),  # 190 a chip over 2 NeuronCore-v2
    ("trn1", None, "fp32", 23.75),
    ("trn2", None, "bf16", 166.75),  # 667 over 4 logical cores at the default LNC=2
    ("trn2", 1, "bf16", 83.375),
    ("trn3", 2, "amp-bf16", 167.75),
    ("inf2", None, "auto-cast", 95.0),
])
def test_a_neuron_rank_gets_its_core_share_of_the_chip(family, lnc, precision, want):
    value, source = peaks.per_device("neuron", None, precision, family, lnc)
    assert value == pytest.approx(want) and "neuron-hardware" in source


def test_gpu_peaks_are_matched_by_name_and_cpus_have_none():
    assert peaks.per_device("cuda", "NVIDIA H100 80GB HBM3", "bf16")[0] == 989
    assert peaks.per_device("cuda", "NVIDIA H100 PCIe", "bf16")[0] == 756
    assert peaks.per_device("cuda", "NVIDIA A100-SXM4-40GB", "fp32")[0] == 19.5
    assert peaks.per_device("cuda", "Some Future GPU", "bf16")[0] is None
    assert peaks.per_device("cpu", "AMD EPYC", "fp32") == (None, "no peak known for this device (CPUs have none in the table)")
    assert peaks.per_device("neuron", None, "bf16", "c7i")[0] is None


@pytest.mark.parametrize("family, version, refused", [
    ("trn1", "2.9.0.2.12.21983", ""),  # Neuron 2.28 (training_data_encoder.csv)
    ("trn1", "2.9.0.2.13.24727", ""),  # 2.29
    ("trn1n", "2.7.0.2.8.6896", ""),  # 2.24 (training_data_decoder.csv)
    ("trn1", "2.9.0.2.15.32035", "Neuron 2.30 or later"),  # 2.31 (release-notes/components/pytorch.rst)
    ("trn1", "2.14.3.0", "2.29 or earlier"),  # TorchNeuron: not the XLA stack
    ("trn1", "0.0.0+standin", "found 0.0.0+standin"),
    ("trn2", "2.9.0.2.13.24727", "use native-eager or native-compile"),
    ("", "2.9.0.2.13.24727", "not a Neuron instance"),
])
def test_xla_training_runs_on_trn1_up_to_neuron_2_29_only(family, version, refused):
    why = xla_refusal(family, version)
    assert (refused in why and why) if refused else why == ""


def test_numerics_judge_step_zero_and_the_way_the_loss_moved():
    cell = _cell()
    ref = [2.0, 1.9, 1.8, 1.7]
    assert numerics(cell, [2.0001, 1.9, 1.8, 1.7001], ref) == (True, "")
    ok, why = numerics(cell, [2.1, 1.9, 1.8, 1.7], ref)
    assert not ok and "step 0's loss" in why and "5.00%" in why
    ok, why = numerics(cell, [2.0, 2.1, 2.2, 2.3], ref)  # it rose where the reference's fell
    assert not ok and "moved +0.3" in why
    ok, why = numerics(cell, [2.0, math.nan, 1.8, 1.7], ref)
    assert not ok and "not finite" in why
    assert numerics(_cell(precision="bf16"), [2.05, 1.9, 1.8, 1.72], ref)[0]  # within bf16's 5 %


def test_derived_columns_follow_the_pooled_rate():
    cell = _cell()
    assert global_batch(cell) == 16
    row = finish({"latency_ms_p50": 10.0, "latency_ms_p90": 12.0, "latency_ms_p99": 15.0, "throughput_avg": 1600.0,
                  "flops_per_step": 1e12, "peak_tflops": 400.0}, cell)
    assert row["step_ms_p50"] == 10.0 and row["step_ms_p99"] == 15.0 and row["samples_per_s"] == 1600.0
    assert row["tokens_per_s"] == 1600.0 * 64 and row["tokens_per_s_per_device"] == 1600.0 * 64 / 2
    # 100 steps/s x 1 TFLOP per rank-step x 2 ranks = 200 TFLOP/s of 400
    assert row["tflops_achieved"] == pytest.approx(200.0) and row["mfu_pct"] == pytest.approx(50.0)
    assert finish({"throughput_avg": 1600.0, "flops_per_step": 1e12}, cell)["mfu_pct"] is None


def test_compile_time_is_the_first_two_steps_minus_two_steady_ones():
    first_ms, compile_s = first_steps([5.0, 1.2, 0.1, 0.1])
    assert first_ms == 5000.0 and compile_s == pytest.approx(6.0)
    assert first_steps([0.1, 0.1, 0.2, 0.1])[1] == 0.0


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-distilbert", "tiny-roberta", "tiny-gpt2", "tiny-llama",
                                  "tiny-vit", "tiny-resnet"])
def test_every_tiny_card_takes_an_optimizer_step(name):
    from bench import models
    from bench.targets.base import Target
    from bench.targets.train_step import build

    card = models.card(name)
    cell = Cell(model=name, scenario="train", batch_size=2, grad_accum=2, optimizer="sgd", precision="fp32", dp=1,
                **card.resolve_shape(None, None))
    trainer = build(Target(), cell)
    first = float(trainer.step().detach())
    assert math.isfinite(first) and math.isfinite(trainer.grad_norm()) and trainer.grad_norm() > 0


def test_a_card_can_train_as_a_masked_lm(tmp_path, monkeypatch):
    from bench import models
    from bench.targets.base import Target
    from bench.targets.train_step import build

    (tmp_path / "mlm.toml").write_text('name = "tiny-mlm"\nmodel_type = "bert"\ntask = "sequence-classification"\n'
                                       'train = "masked-lm"\ninput = "tokens"\n[shape]\nseq_len = 16\n[config]\n'
                                       'hidden_size = 32\nnum_hidden_layers = 1\nnum_attention_heads = 2\n'
                                       'intermediate_size = 64\nvocab_size = 128\n')
    monkeypatch.setenv("TRNBENCH_MODELS", str(tmp_path))
    models._registry_cached.cache_clear()
    cell = Cell(model="tiny-mlm", scenario="train", batch_size=4, seq_len=16, grad_accum=1, optimizer="adamw",
                precision="fp32", dp=1)
    trainer = build(Target(), cell)
    labels = trainer.batches[0]["labels"]
    assert 0 < int((labels != -100).sum()) < labels.numel() // 2  # about 15 % of the tokens are masked
    assert abs(float(trainer.step().detach()) - math.log(128)) < 1.5
    assert type(trainer.model).__name__ == "BertForMaskedLM"
    models._registry_cached.cache_clear()


def test_the_published_trn1_suite_asks_for_the_published_configurations():
    """suites/trn1-train-published.toml's cells are the shipped reference rows' (same key)."""
    import csv

    from bench.tomlfile import read_toml
    from tests.support.paths import ROOT

    suite = read_toml(ROOT / "suites" / "trn1-train-published.toml")
    with (ROOT / "results" / "reference" / "neuron-published-train.csv").open(newline="") as f:
        published = {r["model"]: r for r in csv.DictReader(f)}
    for sweep in suite["sweep"]:
        (model,) = sweep["models"]
        ref = published[model]
        assert sweep["compilers"] == [ref["compiler"]] and sweep["scenarios"] == ["train"]
        assert sweep["batch_sizes"] == [int(ref["batch_size"])] and sweep["dps"] == [int(ref["dp"])]
        assert sweep["precisions"] == [ref["precision"]] and sweep["optimizers"] == [ref["optimizer"]]
        assert sweep.get("grad_accums", [1]) == [int(ref["grad_accum"])]
