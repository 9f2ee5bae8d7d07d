"""Does neuron-bench's p50 agree with a bare perf_counter_ns loop? (README figures)

Interleaves, in one run, for each round: a bare loop in this process (same seeded model,
same inputs, same thread count) and a neuron-bench latency cell (a worker process).
Prints each round and the median ratio harness/bare.

    .venv/bin/python benchmarks/agreement.py --model bert-base-uncased --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np


def bare_loop_p50_ms(fn, inputs, seconds: float, warmup_s: float) -> tuple[float, int]:
    import torch

    with torch.inference_mode():
        end = time.perf_counter() + warmup_s
        while time.perf_counter() < end:
            fn(*inputs)
        lat = []
        end = time.perf_counter_ns() + int(seconds * 1e9)
        while True:
            t0 = time.perf_counter_ns()
            fn(*inputs)
            t1 = time.perf_counter_ns()
            lat.append(t1 - t0)
            if t1 >= end:
                break
    return float(np.median(lat)) / 1e6, len(lat)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bert-base-uncased")
    p.add_argument("--compilers", default="eager")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    args = p.parse_args()

    import torch

    from bench import Measure, Plan, load, models, run_plan
    from bench.targets import get

    measure = Measure(warmup_s=args.warmup, min_duration_s=args.duration, max_duration_s=args.duration,
                      min_samples=10, target_ci=0.0)
    for compiler in args.compilers.split(","):
        plan = Plan.from_grid(models=[args.model], compilers=[compiler], batch_sizes=[args.batch_size],
                              seq_lens=[args.seq_len], measure=measure)
        cell = plan.cells[0]
        torch.set_num_threads(cell.threads_per_worker)
        card = models.card(args.model)
        module = models.build(card)
        inputs = models.make_inputs(card, args.batch_size, cell.seq_len, cell.image_size)
        fn = module
        if compiler != "eager":
            target = get("cpu")
            with tempfile.TemporaryDirectory() as d:
                from pathlib import Path

                fn = target.prepare(module, inputs, cell, None, Path(d)).fn
        bare, harness = [], []
        with tempfile.TemporaryDirectory() as out:
            for r in range(args.rounds):
                b, nb = bare_loop_p50_ms(fn, inputs, args.duration, args.warmup)
                row = load(run_plan(plan, out=out, progress=False)).iloc[0]
                bare.append(b)
                harness.append(row["latency_ms_p50"])
                print(f"{args.model} {compiler} round {r + 1}: bare p50 {b:.3f} ms (n={nb})  "
                      f"neuron-bench p50 {row['latency_ms_p50']:.3f} ms (n={row['samples']}, "
                      f"threads={cell.threads_per_worker})", flush=True)
        ratios = [h / b for h, b in zip(harness, bare)]
        print(f"{args.model} b{args.batch_size} seq{cell.seq_len} cpu/{compiler}: "
              f"median bare {statistics.median(bare):.3f} ms, median neuron-bench "
              f"{statistics.median(harness):.3f} ms, ratio {statistics.median(ratios):.3f} "
              f"(per round: {', '.join(f'{x:.3f}' for x in ratios)})")


if __name__ == "__main__":
    main()
