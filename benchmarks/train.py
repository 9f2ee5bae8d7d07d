"""Figures for -s train (docs/validation.md, "Training steps"); each prints one JSON line.

  agreement  a 6-layer, hidden-256 BERT, seq 64, batch 4, fp32, AdamW, CPU eager: trnbench's
             step time against a bare perf_counter training loop of the same model, batches and
             optimizer, interleaved (harness, bare, harness, ...); the medians' ratio, and
             the per-step difference on tiny-bert (what the harness adds, in us)
  dp         tiny-bert at dp 1 and dp 2 (gloo, elastic launcher) in one run: scaling efficiency
  flops      FlopCounterMode against PaLM's 6N + 12LHQT on bert-base-uncased and tiny-llama
  smoke      the smoke suite's wall time with its train cells

Usage: PYTHONPATH=. python benchmarks/train.py agreement [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "bench.cli"]
CARD = """description = "BERT, 6 layers, hidden 256 (benchmarks/train.py agreement)"
model_type = "bert"
task = "sequence-classification"
input = "tokens"
[shape]
seq_len = 64
max_seq_len = 128
[config]
hidden_size = 256
num_hidden_layers = 6
num_attention_heads = 4
intermediate_size = 1024
vocab_size = 8192
max_position_embeddings = 128
num_labels = 2
"""


def _env(cards: Path) -> dict[str, str]:
    return {**os.environ, "TRNBENCH_MODELS": str(cards), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def harness_step_ms(model: str, batch: int, seconds: float, cards: Path, out: Path) -> float:
    """One trnbench train cell (one round of `seconds`): its p50 step in ms."""
    subprocess.run([*CLI, "run", "-m", model, "-s", "train", "-b", str(batch), "--threads", "1", "--rounds", "1",
                    "--duration", str(seconds), "--max-duration", str(seconds), "--warmup", "0.5", "--target-ci", "0",
                    "--no-progress", "--format", "json", "--out", str(out)],
                   check=True, capture_output=True, env=_env(cards), cwd=ROOT)
    (run,) = sorted(out.iterdir())[-1:]
    row = json.loads((run / "cells.jsonl").read_text().splitlines()[-1])
    if row["status"] not in ("ok", "unstable"):
        raise RuntimeError(row["error"])
    return float(row["step_ms_p50"])


BARE = r"""
import json, sys, time, torch
from bench import models
torch.set_num_threads(1)
card = models.card(sys.argv[1])
model = models.build_for_training(card)
batches = models.training_batches(card, 1, int(sys.argv[2]), card.resolve_shape(None, None)["seq_len"], None)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
def step():
    opt.zero_grad(set_to_none=True)
    for b in batches:
        loss = model(**b).loss
        loss.backward()
    opt.step()
for _ in range(4):
    step()
t_end = time.perf_counter() + 0.5
while time.perf_counter() < t_end:
    step()
times = []
t_end = time.perf_counter() + float(sys.argv[3])
while time.perf_counter() < t_end:
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({"p50_ms": times[len(times) // 2] * 1e3, "steps": len(times)}))
"""


def bare_step_ms(model: str, batch: int, seconds: float, cards: Path) -> float:
    """The same steps in a bare loop, a fresh process (as the harness's worker is)."""
    out = subprocess.run([sys.executable, "-c", BARE, model, str(batch), str(seconds)], check=True,
                         capture_output=True, text=True, env=_env(cards), cwd=ROOT)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["p50_ms"])


def agreement(pairs: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cards = Path(tmp) / "cards"
        cards.mkdir()
        (cards / "bert-6x256.toml").write_text(CARD)
        figures = {}
        for model, batch in (("bert-6x256", 4), ("tiny-bert", 1)):
            h, b = [], []
            for i in range(pairs):
                h.append(harness_step_ms(model, batch, seconds, cards, Path(tmp) / f"out-{model}-{i}"))
                b.append(bare_step_ms(model, batch, seconds, cards))
            ratio = statistics.median(x / y for x, y in zip(h, b))
            figures[model] = {"harness_ms": [round(x, 3) for x in h], "bare_ms": [round(x, 3) for x in b],
                              "median_ratio": round(ratio, 4),
                              "median_diff_us": round(statistics.median((x - y) * 1e3 for x, y in zip(h, b)), 1)}
        return figures


def dp(seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        subprocess.run([*CLI, "run", "-m", "tiny-bert", "-s", "train", "-b", "4", "--dp", "1,2", "--rounds", "3",
                        "--duration", str(seconds), "--no-progress", "--out", str(out)],
                       check=True, capture_output=True, env=_env(Path(tmp)), cwd=ROOT)
        (run,) = list(out.iterdir())
        sys.path.insert(0, str(ROOT))
        from bench.results.store import read_rows

        rows = read_rows(run)
        return {"wall_s": round(time.perf_counter() - t0, 1),
                "rows": [{k: r.get(k) for k in ("dp", "samples_per_s", "samples_per_s_per_rank", "step_ms_p50",
                                                "scaling_efficiency", "threads_per_worker", "status", "error")}
                         for r in rows]}


def flops() -> dict:
    sys.path.insert(0, str(ROOT))
    from bench import models
    from bench.plan.cell import Cell
    from bench.targets.train_step import analytic_flops, reference

    out = {}
    for name, batch in (("bert-base-uncased", 1), ("tiny-llama", 1)):
        shape = models.card(name).resolve_shape(None, None)
        cell = Cell(model=name, scenario="train", batch_size=batch, grad_accum=1, optimizer="adamw", precision="fp32",
                    dp=1, **shape)
        _, counted = reference(cell, 0)
        analytic, formula = analytic_flops(cell)
        out[name] = {"seq_len": shape["seq_len"], "counted": counted, "analytic": analytic,
                     "counted_over_analytic": round(counted / analytic, 4), "formula": formula}
    return out


def smoke() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([*CLI, "run", "--suite", "smoke", "--no-progress", "--out", tmp], capture_output=True,
                       env=_env(Path(tmp)), cwd=ROOT)
        wall = time.perf_counter() - t0
        sys.path.insert(0, str(ROOT))
        from bench.results.store import read_rows

        (run,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        rows = read_rows(run)
        train = [r for r in rows if r.get("scenario") == "train"]
        return {"wall_s": round(wall, 1), "cells": len(rows), "unstable": sum(r["status"] == "unstable" for r in rows),
                "train": [{k: r.get(k) for k in ("model", "status", "step_ms_p50", "samples_per_s", "rounds",
                                                 "compile_s", "error")} for r in train]}


def main() -> None:
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("what", choices=("agreement", "dp", "flops", "smoke"))
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args()
    result = {"agreement": lambda: agreement(a.pairs, a.seconds), "dp": lambda: dp(a.seconds),
              "flops": flops, "smoke": smoke}[a.what]()
    print(json.dumps({a.what: result, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}))


if __name__ == "__main__":
    main()
