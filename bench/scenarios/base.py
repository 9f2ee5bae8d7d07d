"""The scenario protocol: how load is applied to a prepared model, and what a row says about it.

A scenario has three sides:
- plan time (orchestrator, no torch): `plan` fills the cell fields the scenario fixes
  (latency: one copy, one request in flight; generate: an output length), `check` refuses
  a cell it cannot run (UsageError);
- worker side (inside each model copy's process): `prepare` readies the model (by default
  the worker's own preparation: build, compile or load, accuracy, first call) and `measure`
  issues the requests, returning raw numpy arrays;
- orchestrator side: `summarise` turns every copy's arrays into row columns and raw samples,
  `stability` says in words why the figure is shaky, and `execute` may run several
  measurements for one cell (server: the max-rate search), recording each.

A scenario is an instance of a `Scenario` subclass; a plug-in is named "package.module:attr"
(bench.scenarios.get). It sees the worker through `WorkerContext` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.plan.cell import Cell
from bench.targets.base import Prepared, Target

# record(cell, row fields, raw samples): writes an extra row (a server probe)
RecordFn = Callable[[Cell, dict[str, Any], "dict[str, np.ndarray] | None"], None]
# measure(cell) -> (row fields, raw samples): one measurement of a cell on its worker pool
MeasureFn = Callable[[Cell], "tuple[dict[str, Any], dict[str, np.ndarray] | None]"]


@dataclass
class PrepareReport:
    """What a worker says after preparing a cell (the leader's accuracy and device facts too)."""

    build_s: float | None = None
    compile_s: float | None = None
    load_s: float | None = None
    first_call_ms: float | None = None
    cache_hit: bool | None = None
    artifact: str | None = None
    max_abs_err: float | None = None
    cosine: float | None = None
    accuracy_ok: bool = True
    accuracy_error: str = ""
    reference_source: str | None = None
    model_fingerprint: str | None = None
    ready_at: float | None = None  # perf_counter when the process was ready (first cell only)
    device: dict[str, Any] | None = None  # accelerator facts (first cell only)
    extra: dict[str, Any] | None = None  # a scenario's own per-cell columns (endpoint: what the server honoured)

    def row_fields(self) -> dict[str, Any]:
        """The columns this report puts in the row (timings, cache, accuracy figures)."""
        skip = {"accuracy_ok", "accuracy_error", "ready_at", "device", "extra"}
        fields = {k: v for k, v in asdict(self).items() if k not in skip and v is not None}
        return {**fields, **(self.extra or {})}


@dataclass
class MeasureReport:
    """One model copy's raw measurement: arrays named by the scenario, and its page faults."""

    arrays: dict[str, np.ndarray]
    minor_faults: int | None = None
    cpu_s: float | None = None  # this process's CPU time (user + system) while measuring


class WorkerContext:
    """What a scenario sees inside a worker process; bench.execute.worker implements it.

    `index` is the model copy this process is, `target` the target (worker side), `stop_event`
    the event the leader sets to stop every copy of the cell, `prepared` the model ready to call
    (set by `prepare`; a scenario may replace it).
    """

    index: int
    target: Target
    stop_event: Any
    prepared: Prepared | None

    def prepare(self, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
        """The standard preparation: build, compile or load, accuracy vs eager fp32, first call."""
        raise NotImplementedError

    def module(self, cell: Cell, dtype: str = "fp32"):
        """The card's eager module in `dtype` (built once per process and image size)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any] | None:
        """The target's device facts the first time this process is asked, else None."""
        raise NotImplementedError


@dataclass(frozen=True)
class Column:
    """A column a scenario adds to the summary table: its header, and the results column (a
    number, shown with `digits` decimals or 3 significant figures) or a function of the row
    (text)."""

    header: str
    column: str | Callable[[dict[str, Any]], str]
    digits: int | None = None


class Scenario:
    """Base class of every scenario (see the module docstring)."""

    name: str = ""
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
        """Refuse a cell this scenario cannot run (raise UsageError)."""

    # -- worker side ----------------------------------------------------------------------------

    def prepare(self, ctx: WorkerContext, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
        return ctx.prepare(cell, leader, cache_root)

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"scenario {self.name} measures nothing")

    # -- orchestrator side ------------------------------------------------------------------------

    def summarise(self, parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError(f"scenario {self.name} summarises nothing")

    def stability(self, summary: dict[str, Any]) -> str:
        """A sentence saying why the figure is shaky, or ''. Default: the latency-spread rules."""
        from bench.stats.stability import instability

        return instability(summary, "latency")

    def execute(self, measure: MeasureFn, cell: Cell, record: RecordFn | None) -> tuple[dict[str, Any], dict | None]:
        """One cell on its worker pool: by default one measurement. `measure(cell)` runs one."""
        return measure(cell)
