"""The scenario protocol: a load profile, applied through a target's verb, and what a row says about it.

A scenario is how load is applied (MLPerf's names): one request in flight, a closed loop at a
concurrency, arrivals at a rate, a search over rates. What a request *is* belongs to the
target (its verbs, bench.targets.requests): a call into the worker's model, a streamed HTTP
request, an LLM generation. So every scenario runs on every target whose verbs it accepts,
and adding either is one module.

Three sides:
- plan time (orchestrator, no torch): `plan` fills the cell fields the scenario fixes
  (latency: one copy, one request in flight), `check` refuses a cell it cannot run;
- worker side (inside each model copy's process): `prepare` readies the cell (by default the
  verb's preparation) and `measure` applies the load through `ctx.requests`, returning raw
  numpy arrays;
- orchestrator side: `summarise` turns every copy's arrays into row columns and raw samples
  (by default the verb's summary under this profile), `stability` says in words why the
  figure is shaky, and `execute` may run several measurements for one cell (server: the
  max-rate search), recording each.

A scenario is an instance of a `Scenario` subclass; a plug-in is named "package.module:attr"
(bench.scenarios.get). It sees the worker through `WorkerContext` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.plan.cell import Cell
from bench.targets.requests import Column, PrepareReport, Requests, WorkerContext

__all__ = ["Column", "MeasureFn", "MeasureReport", "PrepareReport", "RecordFn", "Scenario", "WorkerContext",
           "requests_of"]

# record(cell, row fields, raw samples): writes an extra row (a server probe)
RecordFn = Callable[[Cell, dict[str, Any], "dict[str, np.ndarray] | None"], None]
# measure(cell) -> (row fields, raw samples): one measurement of a cell on its worker pool
MeasureFn = Callable[[Cell], "tuple[dict[str, Any], dict[str, np.ndarray] | None]"]


@dataclass
class MeasureReport:
    """One model copy's raw measurement: arrays named by the verb, and its page faults."""

    arrays: dict[str, np.ndarray]
    minor_faults: int | None = None
    cpu_s: float | None = None  # this process's CPU time (user + system) while measuring


def requests_of(cell: Cell, scenario: Scenario) -> Requests:
    """The verb `cell`'s target times under `scenario` (orchestrator or worker side)."""
    from bench import targets

    target = targets.get(cell.target)
    return target.requests(target.verb_for(scenario))


class Scenario:
    """Base class of every scenario (see the module docstring)."""

    name: str = ""
    # The verbs (bench.targets.requests.VERBS) whose requests this profile can apply load to;
    # a target offers the first of them it has, or refuses the cell in one line.
    verbs: ClassVar[tuple[str, ...]] = ("infer", "stream")
    # single | closed | open: the shape of the load, which the verb summarises by
    profile: ClassVar[str] = "single"
    # Cell fields this scenario reads beyond the common key; planning leaves the others None.
    uses: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    # Whether rounds (Measure.rounds) pool into one row: percentiles over every round's
    # requests, a rate per round. Scenarios with other verdicts (validity) are measured once.
    pools_rounds: ClassVar[bool] = False

    # -- plan time ------------------------------------------------------------------------------

    def plan(self, cell: Cell) -> Cell:
        """Fill the fields this scenario fixes (before the target fills its own defaults)."""
        return cell

    def check(self, cell: Cell) -> None:
        """Refuse a cell this scenario cannot run (raise UsageError); by default the verb's check."""
        requests_of(cell, self).check(cell, self.profile)

    # -- worker side ----------------------------------------------------------------------------

    def prepare(self, ctx: WorkerContext, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
        return ctx.requests.prepare(ctx, cell, leader, cache_root)

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"scenario {self.name} measures nothing")

    # -- orchestrator side ------------------------------------------------------------------------

    def summarise(self, parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return requests_of(cell, self).summarise(parts, cell, self.profile)

    def finish(self, row: dict[str, Any], cell: Cell) -> dict[str, Any]:
        """The columns that follow from a row's pooled figures (after one round, and again after
        the rounds are combined); by default the verb's (Requests.finish)."""
        return requests_of(cell, self).finish(row, cell)

    def stability(self, summary: dict[str, Any], cell: Cell | None = None) -> str:
        """A sentence saying why the figure is shaky, or ''. Default: the verb's rules for this profile."""
        if cell is None:
            from bench.stats.stability import instability

            return instability(summary, "latency")
        return requests_of(cell, self).stability(summary, self.profile)

    def execute(self, measure: MeasureFn, cell: Cell, record: RecordFn | None) -> tuple[dict[str, Any], dict | None]:
        """One cell on its worker pool: by default one measurement. `measure(cell)` runs one."""
        return measure(cell)
