"""`server` (MLPerf Server): open-loop arrivals at a target rate, no coordinated omission.

What a row means
- Requests arrive on a fixed, seeded schedule (`arrivals.schedule_ns`: Poisson by default,
  gamma with shape `burstiness` otherwise) at `cell.rate_qps`, whether or not earlier ones
  have finished. The schedule is split round-robin over the `n_models` processes, which
  share one absolute start time (perf_counter_ns is CLOCK_MONOTONIC on Linux, the same
  clock in every process); the orchestrator picks it and sends it with the measure request.
- Latency is measured from the **scheduled** send time to completion (plus the target's
  sync), so a request that waited behind a slow one is charged for the wait (no coordinated
  omission). Queueing time (actual start - scheduled time) is recorded apart, as is the
  service time (completion - actual start).
- Each process serves its share with `workers_per_model` threads, the system's concurrent
  slots: a free thread takes the earliest request not yet taken, sleeps until its
  scheduled time if that is still ahead (`time.sleep`, then a spin of at most
  `SPIN_NS`), and issues it. This is the same FIFO queue as a dispatcher thread feeding
  a queue, with no hand-off between threads. `sched_lag_ms_p99` is how late a request
  started although a thread was waiting for it: the harness's own timing error.
- The first `warmup_s` of the schedule are served at the same rate but not counted. The
  measured part runs until both `min_duration_s` has passed and `min_samples` requests
  were scheduled (`build_schedule`); after it, requests still queued are served for a
  drain period of `max(1 s, max_s - window)` and then given up (`requests_unserved`).
- VALID / INVALID (MLPerf's words): INVALID when the p99 latency is over `p99_bound_ms`,
  when requests were not served by the end (overload), when the run stopped early because
  more than 1 % of the requests had already exceeded the bound (p99 is then over it for
  certain, so an overloaded run stops within a fraction of a second instead of draining a
  queue that grows without limit), when the achieved rate is under `KEEP_UP` (90 %) of the
  scheduled one (the system does not keep up, even where no bound is set), or when fewer
  than `min_samples` requests were measured.
  `validity_reason` says which.

Max-rate search (`rate_qps` None and a `p99_bound_ms`): `find_max_rate` first measures the
closed-loop capacity (the `throughput` scenario on the same copies and threads), then
probes open-loop rates starting at that capacity, bisecting between the highest VALID and
the lowest INVALID rate until they are within `REL_TOL`, or `MAX_PROBES` probes. Every
probe is recorded as its own row (`search_role = probe`, `search_of` = the search cell's
id); the search's own row (`search_role = result`) carries `max_rate_qps`, `capacity_qps`,
`rates_tried` (JSON) and the measurements of the probe at the max rate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from bench.plan.cell import Cell
from bench.results.status import decide
from bench.scenarios.base import Column, MeasureFn, RecordFn, Scenario, WorkerContext, requests_of

MAX_PROBES = 8
REL_TOL = 0.05  # search precision: (lowest INVALID - highest VALID) / lowest INVALID
_OK = ("ok", "unstable")


# -- max-rate search (orchestrator) ---------------------------------------------------------


def _round_rate(rate: float) -> float:
    return float(f"{rate:.3g}")


def find_max_rate(run: Callable[[Cell], tuple[dict[str, Any], dict | None]], cell: Cell,
                  record: Callable[[Cell, dict, dict | None], None] | None = None, *,
                  max_probes: int = MAX_PROBES, rel_tol: float = REL_TOL,
                  calibrate: Cell | None = None) -> tuple[dict[str, Any], dict | None]:
    """Highest rate whose run is VALID (under `cell.p99_bound_ms`, or whatever the probes' own
    validity judges: an endpoint's SLOs); one recorded row per probe. `calibrate`: the closed
    loop that estimates the capacity (default: the `throughput` scenario on the same copies)."""
    bound = cell.p99_bound_ms
    if bound is None and calibrate is None:
        raise ValueError("find_max_rate needs a cell with p99_bound_ms")
    calibration = calibrate or replace(cell, scenario="throughput", rate_qps=None, p99_bound_ms=None, burstiness=None)
    cal_row, _ = run(calibration)
    if cal_row.get("status") not in _OK or not cal_row.get("throughput_avg"):
        error = cal_row.get("error") or "no throughput measured"
        return decide(dict(cal_row, search_role="result"), failed=f"capacity probe (closed loop) failed: {error}"), None
    capacity = float(cal_row["throughput_avg"]) / cell.batch_size
    tried: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], dict | None] | None = None
    last: dict[str, Any] = {}
    lowest_invalid: float | None = None
    note = ""
    rate = capacity
    for _ in range(max_probes):
        rate = _round_rate(rate)
        if any(t["rate_qps"] == rate for t in tried):
            break  # rounding converged
        probe = replace(cell, rate_qps=rate)
        fields, samples = run(probe)
        fields = dict(fields, search_role="probe", search_of=cell.cell_id)
        if record is not None:
            record(probe, fields, samples)
        last = fields
        tried.append({"rate_qps": rate, "p99_ms": fields.get("latency_ms_p99"),
                      "validity": fields.get("validity"), "status": fields.get("status")})
        if fields.get("status") not in _OK:
            return decide(dict(fields, search_role="result", rates_tried=json.dumps(tried)),
                          failed=f"probe at {rate:g} qps failed: {fields.get('error', '')}"), None
        if fields.get("validity") == "VALID":
            if best is None or rate > best[0]:
                best = (rate, fields, samples)
        else:
            lowest_invalid = rate if lowest_invalid is None else min(lowest_invalid, rate)
            service_p50 = fields.get("service_ms_p50")
            if bound is not None and service_p50 is not None and service_p50 > bound:  # no rate can keep p99 under it
                note = f"the service time alone (median {service_p50:.3g} ms) exceeds the bound"
                break
        lo = best[0] if best else 0.0
        if lowest_invalid is None:
            rate = rate * 1.5  # still VALID at the capacity estimate: look higher
            continue
        if best is not None and (lowest_invalid - lo) / lowest_invalid <= rel_tol:
            break
        rate = (lo + lowest_invalid) / 2
    summary = dict(best[1] if best else last)
    summary.update(search_role="result", search_of=None, capacity_qps=capacity, rates_tried=json.dumps(tried),
                   search_probes=len(tried))
    if best is not None:
        summary.update(max_rate_qps=best[0], offered_rate_qps=best[0], validity="VALID", validity_reason="")
        return summary, best[2]
    lowest = min(t["rate_qps"] for t in tried) if tried else None
    goal = f"met p99 <= {bound:g} ms" if bound is not None else "was VALID"
    why = f"no rate tried {goal} (lowest tried {lowest:g} qps)" if lowest else "no rate tried"
    summary.update(max_rate_qps=None, validity="INVALID", validity_reason="; ".join(x for x in (why, note) if x))
    return summary, None


def check(cell: Cell) -> None:
    """Plan-time validation of the profile's own numbers (the verb checks that it has a rate or a bound)."""
    from bench.errors import UsageError

    for name in ("p99_bound_ms", "burstiness"):
        value = getattr(cell, name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not value > 0 or not math.isfinite(value)):
            raise UsageError(f"{name} must be a positive number, got {value!r}")


class ServerScenario(Scenario):
    """Open-loop arrivals at `rate_qps` (or the max-rate search when it is None)."""

    profile = "open"
    uses = ("rate_qps", "p99_bound_ms", "burstiness")
    columns = (Column("rate q/s", lambda r: _rate_text(r)), Column("validity", "validity"),
               Column("max rate q/s", "max_rate_qps", 1))

    def plan(self, cell: Cell) -> Cell:
        # each copy's threads are its concurrent slots: one unless asked; burstiness 1 is Poisson
        return replace(cell, workers_per_model=cell.workers_per_model or 1,
                       burstiness=None if cell.burstiness == 1 else cell.burstiness)

    def check(self, cell: Cell) -> None:
        check(cell)
        super().check(cell)  # the verb's own: a bound to search under (p99, or an endpoint's SLOs)

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        """This copy's share of the schedule; every copy starts at the orchestrator's `start_ns`."""
        return ctx.requests.open(ctx, cell, start_ns)

    def execute(self, measure: MeasureFn, cell: Cell, record: RecordFn | None):
        """One cell at its rate, or (rate None) the max-rate search on the same pool, from the
        capacity of the verb's closed loop."""
        if cell.rate_qps is not None:
            return measure(cell)
        return find_max_rate(measure, cell, record, calibrate=requests_of(cell, self).calibration(cell))


def _rate_text(row: dict[str, Any]) -> str:
    rate = row.get("offered_rate_qps") or row.get("rate_qps")
    try:
        return "" if rate is None or rate != rate else f"{float(rate):.1f}"
    except (TypeError, ValueError):
        return ""


SCENARIO = ServerScenario()
