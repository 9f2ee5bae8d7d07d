"""`throughput` (MLPerf Offline): n_models copies x workers_per_model requests in flight (the
concurrency of an endpoint), on any target's request verb."""

from __future__ import annotations

import numpy as np

from bench.plan.cell import Cell
from bench.scenarios.base import Scenario, WorkerContext


class ThroughputScenario(Scenario):
    """Every copy kept busy: copies and requests in flight are the target's to choose (its
    saturating defaults fill what the cell leaves open)."""

    profile = "closed"
    pools_rounds = True

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        return ctx.requests.closed(ctx, cell, cell.workers_per_model, leader)


SCENARIO = ThroughputScenario()
