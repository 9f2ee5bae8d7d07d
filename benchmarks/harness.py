"""Benchmarks of trnbench itself (figures for docs/validation.md; not unit tests).

    .venv/bin/python benchmarks/harness.py overhead   # identity model: harness vs bare loop
    .venv/bin/python benchmarks/harness.py agreement  # p50 vs torch.utils.benchmark and a bare loop
    .venv/bin/python benchmarks/harness.py ttr        # time to a result, and where it goes
    .venv/bin/python benchmarks/harness.py startup    # --help and list models
    .venv/bin/python benchmarks/harness.py store      # load 100 runs x 100 cells; plan 10,000 cells
    .venv/bin/python benchmarks/harness.py all

Every comparison is interleaved round by round in one run, and reported as medians of
the rounds (shared machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness_models, for the workers
ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "bench.cli"]


def bare_latencies(fn, inputs, seconds: float, warmup_s: float) -> np.ndarray:
    """The simplest honest loop: perf_counter_ns around the call, nothing else."""
    import torch

    with torch.inference_mode():
        end = time.perf_counter() + warmup_s
        while time.perf_counter() < end:
            fn(*inputs)
        lat = []
        end = time.perf_counter_ns() + int(seconds * 1e9)
        pc = time.perf_counter_ns
        while True:
            t0 = pc()
            fn(*inputs)
            t1 = pc()
            lat.append(t1 - t0)
            if t1 >= end:
                break
    return np.asarray(lat)


def _bare_throughput_worker(factory_name: str, seconds: float, threads: int, queue) -> None:
    import harness_models
    import torch

    torch.set_num_threads(threads)
    fn, inputs = getattr(harness_models, factory_name)()
    start = time.perf_counter_ns()
    lat = bare_latencies(fn, inputs, seconds, 0.5)
    # wall-clock rate over the timed loop (not 1/mean latency: the loop's own work counts)
    queue.put(len(lat) / ((time.perf_counter_ns() - start) / 1e9 - 0.5))


def bare_throughput(factory_name: str, processes: int, seconds: float, threads: int) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_bare_throughput_worker, args=(factory_name, seconds, threads, q))
             for _ in range(processes)]
    for p in procs:
        p.start()
    rates = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def overhead(rounds: int, seconds: float) -> None:
    import harness_models
    import torch

    from bench import Measure, Plan, UserModel, load, run_plan

    fn, inputs = harness_models.identity()
    torch.set_num_threads(1)
    m = Measure(rounds=1, warmup_s=0.5, min_duration_s=seconds, max_duration_s=seconds, min_samples=100, target_ci=0.0,
                trim_s=0.5)
    model = UserModel("identity", harness_models.identity)
    lat_plan = Plan.from_grid(models=[model], scenarios=["latency"], threads_per_worker=1, measure=m)
    tp_plan = Plan.from_grid(models=[model], scenarios=["throughput"], n_models=2, workers_per_model=1,
                             threads_per_worker=1, measure=m)
    diffs, ratios = [], []
    with tempfile.TemporaryDirectory() as out:
        for r in range(rounds):
            bare = float(np.median(bare_latencies(fn, inputs, seconds, 0.5))) / 1e3
            row = load(run_plan(lat_plan, out=out, progress=False)).iloc[0]
            harness = row["latency_ms_p50"] * 1e3
            bare_tp = bare_throughput("identity", 2, seconds, 1)
            tp = load(run_plan(tp_plan, out=out, progress=False)).iloc[0]["throughput_avg"]
            diffs.append(harness - bare)
            ratios.append(tp / bare_tp)
            print(f"overhead round {r + 1}: bare p50 {bare:.3f} us, trnbench p50 {harness:.3f} us "
                  f"(+{harness - bare:.3f} us); throughput 2 procs: bare {bare_tp:,.0f}/s, "
                  f"trnbench {tp:,.0f}/s (ratio {tp / bare_tp:.3f})", flush=True)
    print(f"OVERHEAD identity: median per-request overhead {statistics.median(diffs):+.3f} us "
          f"(mark: <= 2 us); throughput ratio trnbench/bare {statistics.median(ratios):.3f} (mark: >= 0.97)")


def _independent_timers(model_name: str, compiler: str, cell, seconds: float, keep: bool, queue) -> None:
    """In a fresh process (as the harness's worker is): a bare loop, then torch's Timer."""
    from bench.execute.worker import keep_freed_memory, minor_faults

    if keep:  # before torch allocates anything, as in the harness's worker
        keep_freed_memory()
    import torch
    import torch.utils.benchmark as tb

    from bench import models
    from bench.targets import get

    torch.set_num_threads(cell.threads_per_worker)
    card = models.card(model_name)
    module = models.build(card)
    inputs = models.make_inputs(card, cell.batch_size, cell.seq_len, cell.image_size)
    with tempfile.TemporaryDirectory() as d:
        fn = get("cpu").prepare(module, inputs, cell, None, Path(d)).fn
    faults = minor_faults()
    lat = bare_latencies(fn, inputs, seconds, 1.0)
    faults = (minor_faults() - faults) / len(lat)  # warm-up calls included: an upper bound
    bare = float(np.median(lat)) / 1e6
    timer = tb.Timer(stmt="fn(*inputs)", globals={"fn": fn, "inputs": inputs},
                     num_threads=cell.threads_per_worker)
    with torch.inference_mode():
        tm = timer.blocked_autorange(min_run_time=seconds).median * 1e3
    queue.put((bare, tm, faults))


def agreement(rounds: int, seconds: float, configs: list[tuple[str, str]], keep: bool) -> None:
    """trnbench's p50 against a bare loop and torch.utils.benchmark, round by round.

    The same eager model runs up to ~10 % faster or slower from one process to the next:
    glibc's malloc hands freed memory back to the kernel depending on the heap's history,
    and the next request page-faults it back in. So every round measures each side in a
    fresh process (the independent timers in a spawned process, trnbench in its own
    worker) and prints page faults per request beside each latency; with `keep` both
    processes keep freed memory (Measure.keep_freed_memory) and the lottery is gone.
    """
    from bench import Measure, Plan, load, models, run_plan

    m = Measure(rounds=1, warmup_s=1.0, min_duration_s=seconds, max_duration_s=seconds, min_samples=10, target_ci=0.0,
                keep_freed_memory=keep)
    ctx = mp.get_context("spawn")
    malloc = "keep_freed_memory" if keep else "default malloc"
    for model_name, compiler in configs:
        image = models.card(model_name).input == "image"
        plan = Plan.from_grid(models=[model_name], compilers=[compiler], seq_lens=[None if image else 128],
                              measure=m)
        cell = plan.cells[0]
        bare_r, timer_r, harness_r = [], [], []
        with tempfile.TemporaryDirectory() as out:
            for r in range(rounds):
                q = ctx.Queue()
                proc = ctx.Process(target=_independent_timers, args=(model_name, compiler, cell, seconds, keep, q))
                proc.start()
                bare, tm, bare_faults = q.get()
                proc.join()
                row = load(run_plan(plan, out=out, progress=False)).iloc[-1]
                if row["status"] not in ("ok", "unstable"):
                    raise SystemExit(f"{model_name} {compiler}: {row['status']}: {row['error']}")
                harness = row["latency_ms_p50"]
                bare_r.append(bare)
                timer_r.append(tm)
                harness_r.append(harness)
                print(f"{model_name} {compiler} {malloc} round {r + 1}: bare {bare:.3f} ms "
                      f"({bare_faults:,.0f} faults/request), Timer {tm:.3f} ms, trnbench {harness:.3f} ms "
                      f"({row['page_faults_per_request']:,.0f} faults/request)", flush=True)
        print(f"AGREEMENT {model_name} b1 cpu/{compiler} ({cell.threads_per_worker} threads, {malloc}), medians "
              f"of {rounds} rounds: trnbench {statistics.median(harness_r):.3f} ms, bare loop "
              f"{statistics.median(bare_r):.3f} ms, Timer {statistics.median(timer_r):.3f} ms; "
              f"trnbench/bare {statistics.median(harness_r) / statistics.median(bare_r):.3f}, "
              f"trnbench/Timer {statistics.median(harness_r) / statistics.median(timer_r):.3f}", flush=True)


def time_to_result(rounds: int) -> None:
    walls = []
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            res = subprocess.run([*CLI, "run", "-m", "bert-base-uncased", "-b", "1", "--target-ci", "0.01",
                                  "--out", out, "--no-progress", "--format", "json"],
                                 capture_output=True, text=True, cwd=ROOT, check=True)
            wall = time.perf_counter() - t0
        row = json.loads(res.stdout)[0]
        walls.append(wall)
        warm, measure = row["warmup_s"], row["duration_s"]
        parts = {"worker start (fork, imports)": row["worker_start_s"] or 0.0, "model build": row["build_s"],
                 "compile": row["compile_s"] or 0.0, "first call": row["first_call_ms"] / 1e3,
                 "warm-up": warm, "measurement": measure}
        parts["CLI, env, store, other"] = wall - sum(parts.values())
        ci = max(row["latency_ms_p50"] - row["latency_ms_p50_ci_low"],
                 row["latency_ms_p50_ci_high"] - row["latency_ms_p50"]) / row["latency_ms_p50"]
        shares = ", ".join(f"{k} {v:.2f} s ({v / wall:.0%})" for k, v in parts.items())
        print(f"TTR round {r + 1}: {wall:.2f} s to a row (p50 {row['latency_ms_p50']:.2f} ms +-{ci:.2%}, "
              f"n={row['samples']}): {shares}", flush=True)
    print(f"TTR bert-base-uncased b1 cpu eager, p50 CI +-1%: median {statistics.median(walls):.2f} s")


def startup(rounds: int) -> None:
    for args in (["--help"], ["list", "models"]):
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            subprocess.run([*CLI, *args], capture_output=True, check=True, cwd=ROOT)
            times.append(time.perf_counter() - t0)
        print(f"STARTUP trnbench {' '.join(args)}: median {statistics.median(times) * 1e3:.0f} ms "
              f"over {rounds} (mark: < 500 ms)")


def store(rounds: int) -> None:
    from bench import load
    from bench.plan.cell import Measure
    from bench.plan.grid import Plan
    from bench.results.store import RunStore

    row = json.loads((ROOT / "benchmarks" / "sample_row.json").read_text())
    with tempfile.TemporaryDirectory() as out:
        for r in range(100):
            s = RunStore.create(out, {"name": "synthetic", "cells": []}, {}, run_id=f"run{r:03d}")
            with open(s.path / "cells.jsonl", "w") as f:  # written in one go: this measures load()
                for c in range(100):
                    f.write(json.dumps(dict(row, cell_id=f"{r}-{c}", batch_size=c)) + "\n")
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            df = load(out)
            times.append(time.perf_counter() - t0)
        print(f"STORE load(100 runs x 100 cells) -> {len(df)} rows: median {statistics.median(times):.2f} s "
              f"(mark: < 2 s)")
    grid = dict(models=["tiny-bert", "tiny-roberta", "tiny-distilbert", "tiny-gpt2", "tiny-llama"],
                compilers=["eager", "jit"], scenarios=["latency", "throughput"], dtypes=["fp32", "bf16"],
                batch_sizes=list(range(1, 26)), seq_lens=list(range(8, 88, 8)))
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        plan = Plan.from_grid(measure=Measure(), **grid)
        plan.ordered()
        times.append(time.perf_counter() - t0)
    print(f"PLAN Plan.from_grid of {len(plan.cells)} cells: median {statistics.median(times):.2f} s")
    cmd = [*CLI, "run", "--dry-run", "-m", ",".join(grid["models"]), "-c", "eager,jit", "-s", "latency,throughput",
           "-d", "fp32,bf16", "-b", ",".join(map(str, grid["batch_sizes"])),
           "--seq-len", ",".join(map(str, grid["seq_lens"]))]
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    print(f"PLAN trnbench run --dry-run ({len(plan.cells)} cells, whole command): median "
          f"{statistics.median(times):.2f} s (mark: < 1 s)")


def main() -> None:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["overhead", "agreement", "ttr", "startup", "store", "all"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--configs", default="bert-base-uncased:eager,bert-base-uncased:jit,tiny-bert:eager")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="agreement: both sides' processes keep freed memory (see bench.plan.cell.Measure)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    configs = [tuple(c.split(":")) for c in args.configs.split(",")]
    if args.what in ("startup", "all"):
        startup(max(5, args.rounds))
    if args.what in ("store", "all"):
        store(args.rounds)
    if args.what in ("overhead", "all"):
        overhead(args.rounds, args.seconds)
    if args.what in ("agreement", "all"):
        agreement(args.rounds, args.seconds, configs, args.keep_freed_memory)
    if args.what in ("ttr", "all"):
        time_to_result(args.rounds)


if __name__ == "__main__":
    main()
