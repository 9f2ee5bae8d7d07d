"""`latency` (MLPerf SingleStream): one model copy, one request in flight, on any target's request verb."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.plan.cell import Cell
from bench.scenarios.base import Scenario, WorkerContext


class LatencyScenario(Scenario):
    """One copy, one request in flight: the cell's shape is fixed, whatever the target."""

    profile = "single"
    pools_rounds = True

    def plan(self, cell: Cell) -> Cell:
        return replace(cell, n_models=1, workers_per_model=1)

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        return ctx.requests.closed(ctx, cell, 1, leader)


SCENARIO = LatencyScenario()
