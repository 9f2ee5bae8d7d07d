"""`throughput` (MLPerf Offline): n_models copies x workers_per_model requests in flight.

samples/s counts inputs (requests x batch size) completed in the steady window: the
measured span with the first and last `trim_s` cut off.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.analysis.stats import latency_summary, throughput_summary
from bench.scenarios.closed_loop import run_closed_loop
from bench.spec import Cell


def run(fn, inputs: tuple, target, cell: Cell, stop_event, leader: bool) -> dict[str, np.ndarray]:
    return run_closed_loop(fn, inputs, target, cell, cell.workers_per_model, stop_event, leader)


def summarise(parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    start = np.concatenate([p["start_ns"][~p["warmup"]] for p in parts])
    end = np.concatenate([p["end_ns"][~p["warmup"]] for p in parts])
    warm = int(sum(int(p["warmup"].sum()) for p in parts))
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    latency = end - start
    row: dict[str, Any] = {"samples": int(latency.size), "warmup_samples": warm}
    if latency.size:
        tp = throughput_summary(start, end, cell.batch_size, cell.measure.trim_s)
        row["duration_s"] = (int(end.max()) - int(start.min())) / 1e9
        row["throughput_avg"] = tp["throughput_avg"]
        row["throughput_peak"] = tp["throughput_peak"]
        row["steady_window_s"] = tp["window_s"]
        row["throughput_cv"] = tp.get("throughput_cv", 0.0)
        row.update(latency_summary(latency))
    return row, {"latency_ns": latency, "start_ns": start}
