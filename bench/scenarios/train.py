"""`train`: whole training steps, one after another, on any target with a training-step verb
(cpu, cuda, neuron; bench.targets.train). A request is one optimizer step; its rounds pool
as a latency cell's do (step-time percentiles and their intervals over the rounds), and the
rate is samples/s over each round's synced window."""

from __future__ import annotations

import numpy as np

from bench.plan.cell import Cell
from bench.scenarios.base import Scenario, WorkerContext


class TrainScenario(Scenario):
    """Training steps back to back on one model copy (its dp ranks, with --dp)."""

    verbs = ("train",)
    profile = "single"
    pools_rounds = True

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        return ctx.requests.closed(ctx, cell, 1, leader)


SCENARIO = TrainScenario()
