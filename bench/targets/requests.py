"""What a target times, as the load profiles (bench.scenarios) drive it: its verbs.

A target declares the operations it can time (`Target.verbs`): an inference call (`infer`),
LLM generation (`generate`), a streamed HTTP request (`stream`), a training step (`train`).
For a request verb it hands the worker a `Requests`: how to prepare the cell, keep a number
of requests in flight until the stopping rule says so (`closed`), follow an arrival schedule
(`open`), and what the raw arrays say as row columns (`summarise`, under the profile that
produced them: `single`, `closed` or `open`). The scenarios are the load profiles and know
nothing of how a request is made; the targets know nothing of which profile asks.

Also here, the worker-side types every scenario and target shares: `PrepareReport`,
`WorkerContext`, and `Column` (a summary-table column a scenario or a verb adds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.plan.cell import Cell

VERBS = {
    "infer": "an inference call",
    "generate": "LLM generation",
    "stream": "a streamed HTTP request",
    "train": "a training step",
}
PROFILES = ("single", "closed", "open")  # one request in flight, a closed loop at N, arrivals at a rate


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
    extra: dict[str, Any] | None = None  # a verb's own per-cell columns (endpoint: what the server honoured)

    def row_fields(self) -> dict[str, Any]:
        """The columns this report puts in the row (timings, cache, accuracy figures)."""
        skip = {"accuracy_ok", "accuracy_error", "ready_at", "device", "extra"}
        fields = {k: v for k, v in asdict(self).items() if k not in skip and v is not None}
        return {**fields, **(self.extra or {})}


class WorkerContext:
    """What a scenario and a verb see inside a worker process; bench.execute.worker implements it.

    `index` is the model copy this process is, `target` the target (worker side), `stop_event`
    the event the leader sets to stop every copy of the cell, `prepared` the model ready to call
    (set by `prepare`; a scenario may replace it), `requests` the cell's verb (Requests).
    """

    index: int
    target: Any
    stop_event: Any
    prepared: Any
    requests: Requests

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
    """A column a scenario or a verb adds to the summary table: its header, and the results
    column (a number, shown with `digits` decimals or 3 significant figures) or a function of
    the row (text)."""

    header: str
    column: str | Callable[[dict[str, Any]], str]
    digits: int | None = None


class Requests:
    """One request verb of a target: how it is prepared, issued under each profile, summarised."""

    verb: ClassVar[str] = ""
    # cell fields this verb reads beyond the key's usual ones (planning keeps them: output_len)
    uses: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    # the flag that bounds a max-rate search, for the message that asks for it
    search_bound: ClassVar[str] = "--p99-bound MS"
    # a request lasts seconds (an LLM's): paired windows (ab, run --control) are rounds, not 50 ms
    long: ClassVar[bool] = False

    # -- plan time -------------------------------------------------------------------------

    def plan(self, cell: Cell, profile: str) -> Cell:
        """Fill the cell fields this verb fixes under `profile` (after the scenario's own)."""
        return cell

    def check(self, cell: Cell, profile: str) -> None:
        """Refuse a cell this verb cannot run under `profile` (UsageError)."""

    def calibration(self, cell: Cell) -> Cell:
        """The closed loop whose rate starts a max-rate search on `cell`."""
        from dataclasses import replace

        return replace(cell, scenario="throughput", rate_qps=None, p99_bound_ms=None, burstiness=None)

    # -- worker side -------------------------------------------------------------------------

    def prepare(self, ctx: WorkerContext, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
        return ctx.prepare(cell, leader, cache_root)

    def closed(self, ctx: WorkerContext, cell: Cell, in_flight: int, leader: bool) -> dict[str, np.ndarray]:
        """Keep `in_flight` requests in flight in this process until the stopping rule says so."""
        raise NotImplementedError(f"{self.verb}: no closed loop")

    def open(self, ctx: WorkerContext, cell: Cell, start_ns: int | None) -> dict[str, np.ndarray]:
        """Send this process's share of the cell's arrival schedule (every copy starts at `start_ns`)."""
        raise NotImplementedError(f"{self.verb}: no open loop")

    def no_profile(self, cell: Cell) -> str:
        """Why `cell` has no profiled pass ('' when it has one), said before any worker starts."""
        return ""

    def profile_pass(self, ctx: WorkerContext, cell: Cell, capture) -> int:
        """`--profile`: one untimed pass of this verb's requests inside `capture` (a started
        profiler, bench.targets.profiling), each inside `capture.request()`; returns how many
        requests (steps) it made. ProfileRefused says why a cell has none."""
        from bench.targets.profiling import ProfileRefused

        raise ProfileRefused(f"{VERBS.get(self.verb, self.verb)} has no profiled pass")

    # -- orchestrator side -------------------------------------------------------------------

    def summarise(self, parts: list[dict[str, np.ndarray]], cell: Cell,
                  profile: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError(f"{self.verb}: nothing to summarise")

    def finish(self, row: dict[str, Any], cell: Cell) -> dict[str, Any]:
        """The columns that follow from a row's pooled figures (a training step's rates, MFU);
        by default none."""
        return row

    def stability(self, summary: dict[str, Any], profile: str) -> str:
        """Why the figure is shaky, in words ('' when steady)."""
        from bench.stats.stability import instability

        return instability(summary, "throughput" if profile == "closed" else "latency") if profile != "open" else ""
