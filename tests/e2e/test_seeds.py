"""seeds/: every tiny card still builds the weights and outputs its seed holds; rows carry the
weights' fingerprint; the accuracy check takes its reference from seeds/ when it may; compare
names cells measured on different weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import Measure, Plan, load, models, run_plan, seeds
from bench.analysis.compare import compare_runs
from bench.cli import main

TINY = sorted(name for name, card in models.registry().items() if card.tiny)
QUICK = Measure(rounds=1, warmup_s=0.05, min_duration_s=0.2, max_duration_s=0.4, min_samples=20, target_ci=0.05)


@pytest.mark.parametrize("name", TINY)
def test_every_tiny_card_reproduces_its_seed(name):
    import torch

    seed = seeds.load(name)
    assert seed is not None, f"no seeds/{name}.npz: run python scripts/make_seeds.py {name}"
    card = models.card(name)
    shape = card.resolve_shape(None, None)
    module = models.build(card)
    assert seeds.fingerprint(module) == seed.meta["fingerprint"], (
        f"{name} builds other weights than seeds/ holds (torch {torch.__version__}, seed made with "
        f"{seed.meta['torch']}): the card, the init or the RNG changed")
    inputs = models.make_inputs(card, 1, shape["seq_len"], shape["image_size"])
    for mine, stored in zip(inputs, seed.inputs):
        assert np.array_equal(mine.numpy(), stored)
    with torch.inference_mode():
        out = module(*inputs)
    assert seed.output is not None  # tiny cards keep their whole output
    ok, why = seeds.agrees(seed, out.float().numpy())
    assert ok, why


def test_a_different_model_is_seen():
    import torch

    seed = seeds.load("tiny-bert")
    card = models.card("tiny-bert")
    other = models.build(card, seed=1)
    assert seeds.fingerprint(other) != seed.meta["fingerprint"]
    inputs = models.make_inputs(card, 1, 32, None)
    with torch.inference_mode():
        assert not seeds.agrees(seed, other(*inputs).numpy())[0]


def test_rows_carry_the_fingerprint_and_use_the_stored_reference(tmp_path):
    plan = Plan.from_grid(models=["tiny-bert"], batch_sizes=[1, 2], seq_lens=[32], measure=QUICK)
    df = load(run_plan(plan, out=tmp_path, progress=False)).sort_values("batch_size")
    fp = seeds.load("tiny-bert").meta["fingerprint"]
    assert list(df["model_fingerprint"]) == [fp, fp]
    assert list(df["reference_source"]) == ["seeds", "computed"]  # the seed is at batch 1 only
    assert (df["cosine"] > 0.9999).all()


def test_compare_names_cells_measured_on_different_weights(tmp_path, capsys):
    plan = Plan.from_grid(models=["tiny-bert"], seq_lens=[32], measure=QUICK)
    a = run_plan(plan, out=tmp_path / "a", progress=False)
    b = run_plan(plan, out=tmp_path / "b", progress=False)
    rows = [json.loads(line) for line in (b / "cells.jsonl").read_text().splitlines()]
    rows[0]["model_fingerprint"] = "0123456789abcdef"  # as if B's torch had built other weights
    (b / "cells.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    c = compare_runs(a, b, metrics="p50", threshold="50%")
    assert [fb for _, _, fb in c.different_models] == ["0123456789abcdef"]
    assert "model_fingerprint" in c.rows[0].env_diff
    assert main(["compare", str(a), str(b), "--metric", "p50", "--threshold", "50%"]) == 0
    assert "different model weights in A and B (1" in capsys.readouterr().out
