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

import bisect
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from bench.plan.cell import Cell, Measure
from bench.scenarios import arrivals
from bench.scenarios.base import Column, MeasureFn, RecordFn, Scenario, WorkerContext

SPIN_NS = 80_000  # the last 80 us before a send time are spun rather than slept
MAX_SLEEP_S = 0.05  # a waiting thread looks for a stop request at least this often
LOCAL_LEAD_NS = 20_000_000  # start offset when no common start time was given
OVER_FRACTION = 0.01  # p99: more than 1 % of the requests over the bound puts p99 over it
MIN_DRAIN_S = 1.0
KEEP_UP = 0.9  # achieved / scheduled rate under this is INVALID even without a bound
MAX_PROBES = 8
REL_TOL = 0.05  # search precision: (lowest INVALID - highest VALID) / lowest INVALID
_OK = ("ok", "unstable")


def build_schedule(m: Measure, rate_qps: float, burstiness: float | None = None) -> tuple[np.ndarray, float]:
    """(arrival offsets in ns, measured window in s) of a cell: the warm-up, then arrivals
    until both `min_duration_s` has passed and `min_samples` requests were scheduled (the
    minimums hold as in MLPerf: a low rate gets a longer window, never fewer requests)."""
    warm_ns = int(m.warmup_s * 1e9)
    horizon = m.warmup_s + max(m.min_duration_s, 1.5 * m.min_samples / rate_qps) + 1.0
    while True:  # the stream is seeded and drawn in fixed chunks: a longer horizon extends it
        offsets = arrivals.schedule_ns(rate_qps, horizon, burstiness or 1.0)
        measured = offsets[offsets >= warm_ns]
        if len(measured) >= m.min_samples:
            break
        horizon *= 2
    end = max(warm_ns + int(m.min_duration_s * 1e9), int(measured[m.min_samples - 1]) + 1)
    return offsets[offsets < end], (end - warm_ns) / 1e9


def drain_s(m: Measure, window_s: float) -> float:
    return max(MIN_DRAIN_S, m.max_s - window_s)


def over_limit(n_measured: int) -> int:
    """Requests over the bound from which p99 is certainly over it (numpy's interpolation)."""
    return math.ceil(OVER_FRACTION * n_measured) + 2


# -- worker side ----------------------------------------------------------------------------


def _wait_until(due: int, stopped: Callable[[], bool]) -> bool:
    """Sleep until `due` (perf_counter_ns), spinning only the last SPIN_NS; False if stopped."""
    pc = time.perf_counter_ns
    while True:
        remaining = due - pc()
        if remaining <= SPIN_NS:
            break
        if stopped():
            return False
        time.sleep(min((remaining - SPIN_NS) / 1e9, MAX_SLEEP_S))
    while pc() < due:
        pass
    return True


def run_open_loop(call: Callable[[], Any], sync: Callable[[], None], context: Callable[[], Any], cell: Cell,
                  *, share: int = 0, n_shares: int = 1, start_ns: int | None = None,
                  stop_event=None) -> dict[str, np.ndarray]:
    """Serve share `share` of `n_shares` of the cell's arrival schedule; raw per-request times."""
    if cell.rate_qps is None:
        raise ValueError("a server cell without a rate is a max-rate search: run it with bench.execute.cell.execute")
    m = cell.measure
    offsets, window = build_schedule(m, float(cell.rate_qps), cell.burstiness)
    warm_ns = int(m.warmup_s * 1e9)
    n_measured_total = int(np.count_nonzero(offsets >= warm_ns))
    if start_ns is None:
        start_ns = time.perf_counter_ns() + LOCAL_LEAD_NS
    sched: list[int] = (start_ns + offsets[share::n_shares]).tolist()
    n = len(sched)
    first_measured = bisect.bisect_left(sched, start_ns + warm_ns)
    claim, begin, end = [-1] * n, [-1] * n, [-1] * n
    bound_ns = int(cell.p99_bound_ms * 1e6) if cell.p99_bound_ms else None
    too_many_over = over_limit(n_measured_total)
    deadline = start_ns + int((m.warmup_s + window + drain_s(m, window)) * 1e9)
    lock = threading.Lock()
    counters = {"next": 0, "over": 0}
    stop = threading.Event()
    reason: list[str] = []
    errors: list[BaseException] = []

    def halt(why: str) -> None:
        with lock:
            if not reason:
                reason.append(why)
        stop.set()
        if stop_event is not None:
            stop_event.set()

    def stopped() -> bool:
        return stop.is_set() or (stop_event is not None and stop_event.is_set())

    def serve() -> None:
        pc = time.perf_counter_ns
        try:
            with context():
                while True:
                    with lock:
                        i = counters["next"]
                        if i >= n:
                            return
                        counters["next"] = i + 1
                    t_claim = pc()
                    due = sched[i]
                    if t_claim < due and not _wait_until(due, stopped):
                        return
                    if stopped():
                        return
                    t0 = pc()
                    call()
                    sync()
                    t1 = pc()
                    claim[i], begin[i], end[i] = t_claim, t0, t1
                    if t1 >= deadline:
                        halt("deadline")
                        return
                    if bound_ns is None:
                        continue
                    late_before = t1 - bound_ns  # requests due before this are over the bound
                    with lock:
                        if i >= first_measured and t1 - due > bound_ns:
                            counters["over"] += 1
                        over, waiting_from = counters["over"], max(counters["next"], first_measured)
                    waiting_over = max(0, bisect.bisect_left(sched, late_before) - waiting_from)
                    if over + waiting_over >= too_many_over:
                        halt("bound")
                        return
        except BaseException as exc:  # reported to the orchestrator as the cell's error
            errors.append(exc)
            halt("error")

    threads = [threading.Thread(target=serve, daemon=True, name=f"server-{k}")
               for k in range(max(1, cell.workers_per_model))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return {
        "scheduled_ns": np.asarray(sched, dtype=np.int64),
        "claim_ns": np.asarray(claim, dtype=np.int64),
        "start_ns": np.asarray(begin, dtype=np.int64),
        "end_ns": np.asarray(end, dtype=np.int64),
        "warmup": np.arange(n) < first_measured,
        "stop_reason": np.asarray(reason[0] if reason else ""),
        "measured_total": np.asarray(n_measured_total),
    }


# -- orchestrator side ----------------------------------------------------------------------


def summarise(parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from bench.stats.summary import latency_summary

    def cat(name: str) -> np.ndarray:
        return np.concatenate([np.asarray(p[name]) for p in parts])

    sched, claim, start, end, warm = (cat(k) for k in ("scheduled_ns", "claim_ns", "start_ns", "end_ns", "warmup"))
    reasons = {str(p["stop_reason"]) for p in parts} - {""}
    measured = ~warm
    served = measured & (end >= 0)
    order = np.argsort(sched[served], kind="stable")
    s, c, b, e = (x[served][order] for x in (sched, claim, start, end))
    latency, queue, service = e - s, b - s, e - b
    n_measured = int(measured.sum())
    m = cell.measure
    row: dict[str, Any] = {
        "samples": int(latency.size), "warmup_samples": int((warm & (end >= 0)).sum()),
        "offered_rate_qps": cell.rate_qps,
        "scheduled_rate_qps": n_measured / build_schedule(m, cell.rate_qps, cell.burstiness)[1] if cell.rate_qps else None,
        "requests_unserved": n_measured - int(latency.size),
    }
    if latency.size:
        duration = (int(e.max()) - int(sched[measured].min())) / 1e9
        row["duration_s"] = duration
        row["achieved_rate_qps"] = latency.size / duration if duration > 0 else float("nan")
        row["throughput_avg"] = row["achieved_rate_qps"] * cell.batch_size
        row.update(latency_summary(latency))
        row["queue_ms_p50"], row["queue_ms_p99"] = (float(v) for v in np.percentile(queue / 1e6, [50, 99]))
        row["service_ms_p50"], row["service_ms_p99"] = (float(v) for v in np.percentile(service / 1e6, [50, 99]))
        waited = c < s  # a thread was already waiting: any lateness is the harness's
        if waited.any():
            row["sched_lag_ms_p99"] = float(np.percentile((b - s)[waited] / 1e6, 99))
    row["validity"], row["validity_reason"] = validity(row, cell, reasons)
    # Open-loop latency is wide by nature (queueing): the verdict is `validity`, not the
    # spread, so a server row is never `unstable` on the latency-spread rules.
    row["stability"] = ""
    samples = {"latency_ns": latency, "start_ns": s, "queue_ns": queue, "service_ns": service}
    return row, samples


def validity(row: dict[str, Any], cell: Cell, stop_reasons: set[str]) -> tuple[str, str]:
    """('VALID' | 'INVALID', reason): MLPerf's verdict on a server run."""
    reasons = []
    bound = cell.p99_bound_ms
    unserved = row.get("requests_unserved", 0)
    if "bound" in stop_reasons:
        reasons.append(f"stopped early: more than {OVER_FRACTION:.0%} of the requests exceeded the "
                       f"{bound:g} ms bound (overload)")
    elif unserved:
        reasons.append(f"{unserved} of {unserved + row['samples']} requests not served by the end of the run "
                       f"(overload)")
    elif "error" in stop_reasons:
        reasons.append("stopped by an error in another model process")
    p99 = row.get("latency_ms_p99")
    if bound is not None and p99 is not None and p99 > bound:
        reasons.append(f"p99 {p99:.3g} ms > bound {bound:g} ms")
    achieved, scheduled = row.get("achieved_rate_qps"), row.get("scheduled_rate_qps")
    if not reasons and achieved and scheduled and achieved < KEEP_UP * scheduled:
        reasons.append(f"achieved {achieved:.4g} qps is under {KEEP_UP:.0%} of the scheduled {scheduled:.4g} qps "
                       f"(the system does not keep up)")
    if row["samples"] < cell.measure.min_samples and not reasons:
        reasons.append(f"only {row['samples']} requests measured (min_samples {cell.measure.min_samples})")
    return ("INVALID", "; ".join(reasons)) if reasons else ("VALID", "")


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
        return dict(cal_row, status="failed", error=f"capacity probe (closed loop) failed: {error}",
                    search_role="result"), None
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
            return dict(fields, status="failed", search_role="result", rates_tried=json.dumps(tried),
                        error=f"probe at {rate:g} qps failed: {fields.get('error', '')}"), None
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
    """Plan-time validation: a server cell needs a rate, or a bound to search under."""
    from bench.errors import UsageError

    if cell.rate_qps is None and cell.p99_bound_ms is None:
        raise UsageError("the server scenario needs --rate R (queries/s), or --find-max-rate with --p99-bound MS")
    for name in ("p99_bound_ms", "burstiness"):
        value = getattr(cell, name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not value > 0 or not math.isfinite(value)):
            raise UsageError(f"{name} must be a positive number, got {value!r}")


class ServerScenario(Scenario):
    """Open-loop arrivals at `rate_qps` (or the max-rate search when it is None)."""

    uses = ("rate_qps", "p99_bound_ms", "burstiness")
    columns = (Column("rate q/s", lambda r: _rate_text(r)), Column("validity", "validity"),
               Column("max rate q/s", "max_rate_qps", 1))

    def plan(self, cell: Cell) -> Cell:
        # each copy's threads are its concurrent slots: one unless asked; burstiness 1 is Poisson
        return replace(cell, workers_per_model=cell.workers_per_model or 1,
                       burstiness=None if cell.burstiness == 1 else cell.burstiness)

    def check(self, cell: Cell) -> None:
        check(cell)

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        """This copy's share of the schedule; every copy starts at the orchestrator's `start_ns`."""
        prepared, target = ctx.prepared, ctx.target
        if prepared is None:
            raise RuntimeError("measure before prepare")
        fn, inputs = prepared.fn, prepared.inputs
        return run_open_loop(lambda: fn(*inputs), target.sync, target.thread_context, cell,
                             share=ctx.index, n_shares=cell.n_models, start_ns=start_ns, stop_event=ctx.stop_event)

    def summarise(self, parts, cell):
        return summarise(parts, cell)

    def stability(self, summary: dict[str, Any]) -> str:
        # open-loop latency is wide by nature (queueing): the verdict is `validity`
        return ""

    def execute(self, measure: MeasureFn, cell: Cell, record: RecordFn | None):
        """One cell at its rate, or (rate None) the max-rate search on the same pool."""
        if cell.rate_qps is not None:
            return measure(cell)
        return find_max_rate(measure, cell, record)


def _rate_text(row: dict[str, Any]) -> str:
    rate = row.get("offered_rate_qps") or row.get("rate_qps")
    try:
        return "" if rate is None or rate != rate else f"{float(rate):.1f}"
    except (TypeError, ValueError):
        return ""


SCENARIO = ServerScenario()
