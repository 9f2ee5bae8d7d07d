"""The generate scenario: vLLM's metric definitions, exact token counts, the NxD Inference path."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from bench import Plan, load, run_plan
from bench.errors import UsageError
from bench.plan.cell import Cell, Measure
from bench.results.schema import COLUMNS
from bench.results.store import load_samples
from bench.scenarios import generate
from bench.targets.generate import HfGenerator

MS = 1_000_000
QUICK = Measure(warmup_s=0.1, min_duration_s=0.3, max_duration_s=0.6, min_samples=3, target_ci=0.0)


# -- metrics on a synthetic token stream -----------------------------------------------------


def test_metrics_follow_the_definitions_exactly():
    # request 1: start 0, tokens at 10, 15, 22, 30 ms; request 2: start 100, tokens at 104, 110 ms
    starts = [0, 100 * MS]
    tokens = [[10 * MS, 15 * MS, 22 * MS, 30 * MS], [104 * MS, 110 * MS]]
    r1 = generate.request_metrics(starts[0], tokens[0])
    assert r1["ttft_ns"] == 10 * MS and r1["e2e_ns"] == 30 * MS and r1["output_tokens"] == 4
    assert r1["tpot_ns"] == (30 - 10) * MS / 3  # (e2e - TTFT) / (tokens - 1)
    assert list(r1["itl_ns"]) == [5 * MS, 7 * MS, 8 * MS]  # every gap between tokens
    m = generate.generate_metrics(starts, tokens)
    assert m["ttft_ms_p50"] == pytest.approx(7.0) and m["ttft_ms_mean"] == pytest.approx(7.0)  # 10, 4
    assert m["tpot_ms_mean"] == pytest.approx((20 / 3 + 6) / 2)
    assert m["itl_ms_p50"] == pytest.approx(6.5)  # pooled gaps 5, 7, 8, 6
    assert m["itl_ms_mean"] == pytest.approx(6.5)
    assert m["itl_ms_p99"] == pytest.approx(np.percentile([5, 7, 8, 6], 99))
    assert m["e2e_ms_p50"] == pytest.approx(20.0)  # 30 and 10
    span_s = 0.110  # first start -> last token
    assert m["output_tokens"] == 6
    assert m["output_tokens_per_s"] == pytest.approx(6 / span_s)
    assert m["requests_per_s"] == pytest.approx(2 / span_s)
    assert m["span_s"] == pytest.approx(span_s)


def test_a_batch_counts_every_sequence_in_the_rates_but_once_in_the_distributions():
    starts, tokens = [0], [[10 * MS, 20 * MS, 30 * MS]]
    one, four = generate.generate_metrics(starts, tokens, 1), generate.generate_metrics(starts, tokens, 4)
    assert four["output_tokens_per_s"] == pytest.approx(4 * one["output_tokens_per_s"])
    assert four["requests_per_s"] == pytest.approx(4 * one["requests_per_s"])
    assert four["ttft_ms_p50"] == one["ttft_ms_p50"] == 10.0 and four["tpot_ms_p50"] == one["tpot_ms_p50"] == 10.0


def test_a_single_token_has_a_ttft_but_no_tpot():
    m = generate.generate_metrics([0], [[5 * MS]])
    assert m["ttft_ms_p50"] == 5.0 and "tpot_ms_p50" not in m and "itl_ms_p50" not in m


def test_ragged_tokens_round_trip_through_offsets():
    flat = np.arange(7)
    parts = generate.split_tokens(flat, np.array([0, 3, 3 + 4]))
    assert [list(p) for p in parts] == [[0, 1, 2], [3, 4, 5, 6]]


# -- the request loop ------------------------------------------------------------------------


def _fake_generator(n_tokens: int, gap_s: float = 0.001):
    import time

    calls = []

    def gen(on_token):
        calls.append(1)
        for _ in range(n_tokens):
            time.sleep(gap_s)
            on_token()
        return n_tokens

    return gen, calls


def test_each_request_gets_fresh_token_times():
    cell = Cell(model="m", scenario="generate", seq_len=8, output_len=5, measure=QUICK)
    gen, calls = _fake_generator(5)
    part = generate.run_requests(gen, cell)
    offsets = part["token_offsets"]
    assert len(offsets) == len(calls) + 1 and np.all(np.diff(offsets) == 5)  # no accumulation
    per = generate.split_tokens(part["token_ns"], offsets)
    assert all(t[0] > s for t, s in zip(per, part["start_ns"]))
    assert part["warmup"][0] and not part["warmup"][-1]
    row, samples = generate.summarise([part], cell)
    assert row["samples"] == (~part["warmup"]).sum() and row["tpot_ms_p50"] >= 1.0
    assert len(samples["itl_ns"]) == row["samples"] * 4


def test_a_request_with_the_wrong_token_count_fails_the_cell():
    cell = Cell(model="m", scenario="generate", seq_len=8, output_len=5, measure=QUICK)
    gen, _ = _fake_generator(3)
    with pytest.raises(RuntimeError, match="exactly 5 new tokens"):
        generate.run_requests(gen, cell)


# -- transformers' generate on CPU -----------------------------------------------------------


def _tiny_llama():
    from bench import models

    card = models.card("tiny-llama")
    return card, models.build(card).model


def test_hf_generator_never_stops_early_at_eos():
    import torch

    from bench import models

    card, model = _tiny_llama()
    ids, mask = models.make_inputs(card, 2, 12, None)
    with torch.inference_mode():
        first = model.generate(ids, attention_mask=mask, max_new_tokens=1, do_sample=False)[0, -1].item()
        model.generation_config.eos_token_id = first  # the model's very next token is now EOS
        ticks = []
        produced = HfGenerator(model, ids, mask, 9, lambda: None)(lambda: ticks.append(1))
        stopped = model.generate(ids[:1], attention_mask=mask[:1], max_new_tokens=9, do_sample=False,
                                 pad_token_id=0)
    assert stopped.shape[-1] - ids.shape[-1] < 9  # plain generate would stop at EOS...
    assert produced == 9 and len(ticks) == 9  # ... the scenario's request does not


def test_generate_end_to_end_on_cpu(tmp_path):
    plan = Plan.from_grid(models=["tiny-llama", "tiny-gpt2"], scenarios=["generate"], seq_lens=[16],
                          output_lens=[8], batch_sizes=[1, 2], measure=QUICK)
    assert {c.n_models for c in plan.cells} == {1} and {c.output_len for c in plan.cells} == {8}
    run_dir = run_plan(plan, out=tmp_path, progress=False)
    df = load(run_dir)
    assert set(df["status"]) <= {"ok", "unstable"}, df[["status", "error"]]
    assert {"ttft_ms_p50", "tpot_ms_p99", "itl_ms_p90", "output_tokens_per_s", "requests_per_s"} <= set(COLUMNS)
    for _, row in df.iterrows():
        raw = load_samples(run_dir, row["cell_id"])
        per = generate.split_tokens(raw["token_ns"], raw["token_offsets"])
        assert len(per) == row["samples"] >= 1 and all(len(t) == 8 for t in per)
        assert row["input_len"] == 16 and row["output_len"] == 8
        again = generate.generate_metrics(raw["start_ns"], per, int(row["batch_size"]))
        for col in ("ttft_ms_p50", "tpot_ms_p99", "itl_ms_p90", "output_tokens_per_s", "requests_per_s"):
            assert row[col] == pytest.approx(again[col])
        assert row["ttft_ms_p50"] < row["e2e_ms_p50"] and row["latency_ms_p50"] == pytest.approx(row["e2e_ms_p50"])
        assert row["output_tokens_per_s"] == pytest.approx(row["requests_per_s"] * 8)
        assert row["throughput_avg"] == pytest.approx(row["requests_per_s"])


@pytest.mark.parametrize("kwargs, message", [
    ({"models": ["tiny-bert"]}, "decoder LLM"),
    ({"models": ["tiny-llama"], "compilers": ["jit"]}, "use compiler eager"),
    ({"models": ["tiny-llama"], "seq_lens": [200], "output_lens": [100]}, "beyond its limit"),
    ({"models": ["tiny-llama"], "output_lens": [0]}, "positive integer"),
    ({"models": ["tiny-llama"], "workers_per_model": 2}, "--n-models"),
])
def test_bad_generate_plans_are_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        Plan.from_grid(scenarios=["generate"], **kwargs)


def test_output_len_is_only_in_generate_keys_and_defaults_to_128():
    plan = Plan.from_grid(models=["tiny-llama"], scenarios=["latency", "generate"], seq_lens=[32])
    lat, gen = sorted(plan.cells, key=lambda c: c.scenario == "generate")
    assert "output_len" not in lat.key() and gen.output_len == generate.DEFAULT_OUTPUT_LEN
    from bench.cli import make_parser
    from bench.cli.plans import build_plan

    args = make_parser().parse_args(["run", "-m", "tiny-llama", "-s", "generate", "--seq-len", "64",
                                     "--output-len", "16,32"])
    assert sorted(c.output_len for c in build_plan(args).cells) == [16, 32]


# -- NxD Inference (neuron), contract-tested against a stand-in -------------------------------


@pytest.fixture
def nxdi_stand_in(monkeypatch, tmp_path):
    """The stand-in package importable in this process, with its call log."""
    from tests.support.scenario_helpers import NXDI_STAND_IN

    log = tmp_path / "nxdi.jsonl"
    monkeypatch.setenv("TRNBENCH_NXDI_STANDIN_LOG", str(log))
    monkeypatch.syspath_prepend(NXDI_STAND_IN)
    yield log
    for name in [m for m in sys.modules if m.startswith("neuronx_distributed_inference")]:
        del sys.modules[name]


def _events(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_nxdi_unavailable_says_where_to_get_it():
    from bench.targets.neuron import nxdi as generate_nxd

    ok, reason = generate_nxd.availability()
    if "neuronx_distributed_inference" not in sys.modules:
        assert not ok and "pip.repos.neuron.amazonaws.com" in reason


def test_nxdi_neuron_config_follows_the_cell():
    from bench.targets.neuron import nxdi as generate_nxd

    cell = Cell(model="tiny-llama", target="neuron", compiler="nxdi", scenario="generate", batch_size=4,
                seq_len=128, output_len=64, dtype="bf16", compiler_args=("tp_degree=2", "enable_bucketing=true"))
    kw = generate_nxd.neuron_config_kwargs(cell)
    assert kw == {"tp_degree": 2, "batch_size": 4, "max_context_length": 128, "seq_len": 192,
                  "torch_dtype": "bfloat16", "enable_bucketing": True}
    with pytest.raises(UsageError, match="key=value"):
        generate_nxd.parse_overrides(["--auto-cast"])
    assert generate_nxd.visible_core_count("0-3,6") == 5 and generate_nxd.visible_core_count("") is None


def test_nxdi_compiles_once_loads_and_times_every_token(nxdi_stand_in, tmp_path):
    import torch

    from bench import models
    from bench.targets.neuron import nxdi as generate_nxd

    card, hf = _tiny_llama()
    cell = Cell(model="tiny-llama", compiler="nxdi", scenario="generate", batch_size=2, seq_len=16,
                output_len=6, compiler_args=("tp_degree=1",))
    built = generate_nxd.build(card, cell, lambda: hf, tmp_path / "cache")
    assert built["compile_s"] is not None and not built["cache_hit"]
    ticks: list[int] = []
    assert built["generator"](lambda: ticks.append(1)) == 6 and len(ticks) == 6  # one per forward
    again = generate_nxd.build(card, cell, lambda: hf, tmp_path / "cache")
    assert again["cache_hit"] and again["compile_s"] is None and again["artifact"] == built["artifact"]
    events = _events(nxdi_stand_in)
    compiles = [e for e in events if e["event"] == "compile"]
    assert len(compiles) == 1 and len([e for e in events if e["event"] == "load"]) == 2
    assert compiles[0]["neuron_config"] == {"tp_degree": 1, "batch_size": 2, "max_context_length": 16,
                                            "seq_len": 22, "torch_dtype": "torch.float32"}
    # the checkpoint NxD Inference loaded carries the card's weights: greedy tokens agree
    ids, mask = models.make_inputs(card, 2, 16, None)
    gen = again["generator"]
    gen.model.reset()
    neuron = gen.adapter.generate(ids, attention_mask=mask, max_new_tokens=6)
    with torch.inference_mode():
        cpu = hf.generate(ids, attention_mask=mask, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert torch.equal(neuron, cpu)


def test_nxdi_refuses_a_tp_degree_beyond_the_visible_cores(nxdi_stand_in, tmp_path, monkeypatch):
    from bench.targets.neuron import nxdi as generate_nxd

    card, hf = _tiny_llama()
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "3")
    cell = Cell(model="tiny-llama", compiler="nxdi", scenario="generate", seq_len=16, output_len=4,
                compiler_args=("tp_degree=2",))
    with pytest.raises(RuntimeError, match="tp_degree=2 needs 2 NeuronCores"):
        generate_nxd.build(card, cell, lambda: hf, tmp_path)


def test_nxdi_generate_end_to_end_through_a_worker(tmp_path, monkeypatch):
    log = tmp_path / "nxdi.jsonl"
    monkeypatch.setenv("TRNBENCH_NXDI_STANDIN_LOG", str(log))
    plan = Plan.from_grid(models=["tiny-llama"], targets=["tests.support.scenario_helpers:NxdiOnCpu"], compilers=["nxdi"],
                          scenarios=["generate"], seq_lens=[16], output_lens=[5], measure=QUICK)
    df = load(run_plan(plan, out=tmp_path / "runs", progress=False, cache_dir=tmp_path / "cache"))
    row = df.iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["compile_s"] > 0 and row["output_len"] == 5 and row["ttft_ms_p50"] > 0
    events = _events(log)
    generates = [e for e in events if e["event"] == "generate"]
    resets = [e for e in events if e["event"] == "reset"]
    # one cold request in prepare, then warm-up and measured ones: a fresh KV cache for each
    assert len(generates) == len(resets)
    if row["busy_retries"] == 0:  # a busy host measures the round again (bench.execute.rounds)
        assert len(generates) == 1 + row["samples"] + row["warmup_samples"]
    else:
        assert len(generates) > 1 + row["samples"] + row["warmup_samples"]


@pytest.mark.neuron
def test_generate_on_neuron_through_nxd_inference(tmp_path):
    from bench.targets.neuron import nxdi as generate_nxd

    ok, reason = generate_nxd.availability()
    if not ok:
        pytest.skip(reason)
    plan = Plan.from_grid(models=["tiny-llama"], targets=["neuron"], compilers=["nxdi"], scenarios=["generate"],
                          seq_lens=[32], output_lens=[16], measure=QUICK)
    row = load(run_plan(plan, out=tmp_path, progress=False)).iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["ttft_ms_p50"] > 0 and row["tpot_ms_p50"] > 0 and row["output_tokens_per_s"] > 0


@pytest.mark.cuda
def test_generate_on_cuda(tmp_path):
    plan = Plan.from_grid(models=["tiny-llama"], targets=["cuda"], scenarios=["generate"], seq_lens=[32],
                          output_lens=[16], batch_sizes=[1, 4], measure=QUICK)
    df = load(run_plan(plan, out=tmp_path, progress=False))
    assert set(df["status"]) <= {"ok", "unstable"}, df[["status", "error"]]
    assert (df["tpot_ms_p50"] > 0).all() and (df["output_tokens_per_s"] > 0).all()
