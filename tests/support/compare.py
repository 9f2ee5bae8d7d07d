"""Helpers for the compare/report tests: synthetic run directories and models of known speed.

Synthetic runs are written with bench.results.store.RunStore, with latencies drawn from a known
distribution, so a test can assert an exact ratio (B = A x 1.2 -> B/A = 1.20). The model
factories are imported by name inside worker processes (like tests.support.plugins).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from bench.plan.cell import Cell
from bench.results.schema import SCHEMA_VERSION
from bench.results.store import RunStore, load_samples, read_rows
from bench.stats import stability
from bench.stats.summary import latency_summary, throughput_summary

BASE_KEY: dict[str, Any] = {
    "model": "syn-bert", "weights": "random", "target": "cpu", "compiler": "eager", "dtype": "fp32",
    "compiler_args": "", "scenario": "latency", "batch_size": 1, "seq_len": 32, "image_size": None,
    "n_models": 1, "workers_per_model": 1, "threads_per_worker": 1, "rate_qps": None,
}
BASE_ENV: dict[str, Any] = {
    "instance_type": "", "hostname": "testhost", "cpu_model": "Test CPU", "cpu_count": 2,
    "accelerator": "none", "device_name": "Test CPU", "python": "3.11.0", "torch": "2.13.0",
    "transformers": "5.0.0", "torch_neuronx": "", "neuronx_cc": "", "harness_version": "0.1.0",
    "git_commit": "0" * 40, "git_dirty": False,
}


def cell_id(key: dict[str, Any]) -> str:
    return Cell.from_key(key).cell_id


def closed_loop(latency_ns: np.ndarray, in_flight: int, t0: int = 10**12) -> tuple[np.ndarray, np.ndarray]:
    """Start times of `in_flight` closed-loop streams issuing these requests; sorted by start."""
    streams = [latency_ns[i::in_flight] for i in range(in_flight)]
    starts = [t0 + np.concatenate([[0], np.cumsum(s)[:-1]]) for s in streams]
    start = np.concatenate(starts)
    lat = np.concatenate(streams)
    order = np.argsort(start, kind="stable")
    return start[order].astype(np.int64), lat[order].astype(np.int64)


def make_run(root: Path, run_id: str, cells: list[dict[str, Any]], *, scale: float = 1.0, seed: int = 0,
             n: int = 3000, median_ms: float = 1.0, sigma: float = 0.08, env: dict[str, Any] | None = None,
             round_factors: list[float] | None = None) -> Path:
    """A run directory whose cells have lognormal latencies (median `median_ms` x `scale`).

    Each entry of `cells` overrides BASE_KEY and may carry "_status", "_n", "_median_ms",
    "_sigma" (spread of log latency; 0.8 makes a cell unstable), "_scale", "_env", "_stretch"
    ((from, to, factor): requests from..to of the run are factor x slower, consecutively) and
    "_shuffle" (the same latencies in random order). With the same seed, scale=1.2 gives
    exactly 1.2 x every latency (and 1/1.2 x the throughput). `round_factors`: every cell is
    measured in len(round_factors) equal rounds (a `round` array in its samples), round r
    of every cell `round_factors[r]` x slower: what the machine did in that pass over the plan.
    """
    environment = dict(BASE_ENV, **(env or {}))
    store = RunStore.create(root, {"name": "synthetic", "cells": []}, environment, run_id=run_id)
    for i, spec in enumerate(cells):
        key = dict(BASE_KEY, **{k: v for k, v in spec.items() if not k.startswith("_")})
        rng = np.random.default_rng([seed, i])
        count = spec.get("_n", n)
        lat = rng.lognormal(np.log(spec.get("_median_ms", median_ms) * 1e6), spec.get("_sigma", sigma), count)
        lat = lat * scale * spec.get("_scale", 1.0)
        if "_stretch" in spec:  # (from, to, factor): a slow stretch of consecutive requests
            lo, hi, factor = spec["_stretch"]
            lat[int(lo * count):int(hi * count)] *= factor
        if spec.get("_shuffle"):  # the same values in random order: no correlation in time
            lat = rng.permutation(lat)
        rounds = None
        if round_factors:
            assert key["scenario"] == "latency", "round_factors: latency cells only (one request in flight)"
            rounds = np.repeat(np.arange(len(round_factors), dtype=np.int16), -(-count // len(round_factors)))[:count]
            lat = lat * np.asarray(round_factors)[rounds]
        lat = lat.astype(np.int64)
        row = {"run_id": run_id, "cell_id": cell_id(key), **key, "trim_s": 0.05,
               **environment, **spec.get("_env", {})}
        status = spec.get("_status", "ok")  # "ok" becomes "unstable" when the spread says so
        samples = None
        if status in ("ok", "unstable"):
            in_flight = key["n_models"] * key["workers_per_model"] if key["scenario"] != "latency" else 1
            start, lat = closed_loop(lat, in_flight)
            end = start + lat
            summary = {"samples": int(lat.size), **latency_summary(lat)}
            if key["scenario"] == "latency":
                summary["throughput_avg"] = lat.size * key["batch_size"] / ((end.max() - start.min()) / 1e9)
            else:
                tp = throughput_summary(start, end, key["batch_size"], 0.05)
                summary.update(throughput_avg=tp["throughput_avg"], throughput_peak=tp["throughput_peak"],
                               throughput_cv=tp.get("throughput_cv", 0.0))
            row.update(summary)
            row["stability"] = stability.instability(summary, key["scenario"])
            if row["stability"]:
                status = "unstable"
            samples = {"latency_ns": lat, "start_ns": start}
            if rounds is not None:
                samples["round"] = rounds
                row["rounds"] = len(round_factors)
            row["error"] = row["stability"] if status == "unstable" else ""
        else:
            row["error"] = f"deliberate {status}"
        row.update(status=status, timestamp=1.7e9, schema_version=SCHEMA_VERSION)
        store.append(row, samples)
    return store.path


def scaled_copy(run_dir: Path, out_root: Path, factor: float, run_id: str | None = None) -> Path:
    """A copy of a real run whose every latency (and inter-start gap) is `factor` times longer."""
    run_dir = Path(run_dir)
    dest = Path(out_root) / (run_id or f"{run_dir.name}-x{factor:g}")
    shutil.copytree(run_dir, dest)
    meta = json.loads((dest / "run.json").read_text())
    meta["run_id"] = dest.name
    (dest / "run.json").write_text(json.dumps(meta))
    rows = read_rows(run_dir)
    for row in rows:
        path = dest / "samples" / f"{row['cell_id']}.npz"
        if path.exists():
            s = load_samples(run_dir, row["cell_id"])
            start = s["start_ns"].astype(np.int64)
            t0 = int(start.min())
            new = {"latency_ns": (s["latency_ns"] * factor).astype(np.int64),
                   "start_ns": (t0 + (start - t0) * factor).astype(np.int64)}
            np.savez_compressed(path, **new)
        for col in list(row):
            if col.startswith("latency_ms_") and row[col] is not None:
                row[col] = row[col] * factor
        for col in ("throughput_avg", "throughput_peak"):
            if row.get(col) is not None:
                row[col] = row[col] / factor
        row["run_id"] = dest.name
    (dest / "cells.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dest


# -- models of known relative speed (imported by name inside workers) --------------------


def _mlp(passes: int):
    import torch

    torch.manual_seed(0)

    class Repeated(torch.nn.Module):
        """The same MLP block applied `passes` times: 6 passes do 20 % more work than 5, 8 do 60 %."""

        def __init__(self):
            super().__init__()
            self.block = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Tanh())

        def forward(self, x):
            for _ in range(passes):
                x = self.block(x)
            return x

    return Repeated(), (torch.randn(8, 256),)


def mlp_5():
    return _mlp(5)


def mlp_6():
    return _mlp(6)


def mlp_8():
    return _mlp(8)
