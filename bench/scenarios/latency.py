"""`latency` (MLPerf SingleStream): one model copy, one request in flight."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from bench.plan.cell import Cell
from bench.scenarios.base import Scenario, WorkerContext
from bench.scenarios.closed_loop import run_closed_loop
from bench.stats.summary import latency_summary


def run(fn, inputs: tuple, target, cell: Cell, stop_event, leader: bool) -> dict[str, np.ndarray]:
    return run_closed_loop(fn, inputs, target, cell, 1, stop_event, leader)


def summarise(parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    part = parts[0]
    keep = ~part["warmup"]
    start, end = part["start_ns"][keep], part["end_ns"][keep]
    latency = end - start
    row: dict[str, Any] = {"samples": int(latency.size), "warmup_samples": int(part["warmup"].sum())}
    if latency.size:
        duration = (int(end.max()) - int(start.min())) / 1e9
        row["duration_s"] = duration
        row["throughput_avg"] = latency.size * cell.batch_size / duration if duration > 0 else float("nan")
        row.update(latency_summary(latency))
    return row, {"latency_ns": latency, "start_ns": start}


class LatencyScenario(Scenario):
    """One copy, one request in flight: the cell's shape is fixed, whatever the target."""

    pools_rounds = True

    def plan(self, cell: Cell) -> Cell:
        return replace(cell, n_models=1, workers_per_model=1)

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        p = ctx.prepared
        return run(p.fn, p.inputs, ctx.target, cell, ctx.stop_event, leader)

    def summarise(self, parts, cell):
        return summarise(parts, cell)


SCENARIO = LatencyScenario()
