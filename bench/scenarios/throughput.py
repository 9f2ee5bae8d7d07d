"""`throughput` (MLPerf Offline): n_models copies x workers_per_model requests in flight.

samples/s counts inputs (requests x batch size) completed in the steady window: the
measured span with the first and last `trim_s` cut off.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.plan.cell import Cell
from bench.scenarios.base import Scenario, WorkerContext
from bench.scenarios.closed_loop import run_closed_loop
from bench.stats.stability import instability
from bench.stats.summary import latency_summary, throughput_summary


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


class ThroughputScenario(Scenario):
    """Every copy kept busy: copies and requests in flight are the target's to choose (its
    saturating defaults fill what the cell leaves open)."""

    pools_rounds = True

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        p = ctx.prepared
        return run(p.fn, p.inputs, ctx.target, cell, ctx.stop_event, leader)

    def summarise(self, parts, cell):
        return summarise(parts, cell)

    def stability(self, summary: dict[str, Any]) -> str:
        """Judged on the steadiness of the rate (latency under load is naturally wide)."""
        return instability(summary, "throughput")


SCENARIO = ThroughputScenario()
