"""The `infer` verb: a request is one call of the prepared model in the worker (cpu, cuda,
neuron), timed with perf_counter_ns around the call and the target's sync.

Under each load profile (bench.scenarios): `single` and `closed` keep requests in flight
with the closed loop, `open` follows the arrival schedule (bench.targets.loops). Summaries:
- single (MLPerf SingleStream): latency percentiles; samples/s = requests x batch / span.
- closed (MLPerf Offline): samples/s counts inputs (requests x batch size) completed in the
  steady window: the measured span with the first and last `trim_s` cut off.
- open (MLPerf Server): latency from the scheduled send time, queueing and service apart, the
  VALID / INVALID verdict (bench.scenarios.server says what a row means).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.plan.cell import Cell
from bench.stats.summary import call_sync_summary, latency_summary, throughput_summary
from bench.targets.loops import (
    KEEP_UP,
    OVER_FRACTION,
    build_schedule,
    run_closed_loop,
    run_open_loop,
)
from bench.targets.requests import Requests, WorkerContext


def time_split(parts: list[dict[str, np.ndarray]], row: dict[str, Any], samples: dict[str, np.ndarray]) -> None:
    """Where a request's time went, where the target syncs (the loop kept when each call
    returned): `call_ms_*`, the call itself (the host's dispatch; for a call that returns only
    when the device is done, the device's execution too), and `sync_ms_*`, the wait for the
    device after it. Nothing runs before the call: the inputs are on the device's side before
    timing starts."""
    if not parts or not all("returned_ns" in p for p in parts):
        return
    keep = [~p["warmup"] for p in parts]
    # in the order of the summary's latency_ns: every copy's requests by start time (stable)
    order = np.argsort(np.concatenate([p["start_ns"][k] for p, k in zip(parts, keep)]), kind="stable")
    call = np.concatenate([(p["returned_ns"] - p["start_ns"])[k] for p, k in zip(parts, keep)])[order]
    if call.size:
        row.update(call_sync_summary(call, samples["latency_ns"]))
        samples["call_ns"] = call


def summarise_single(parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    part = parts[0]
    keep = ~part["warmup"]
    start, end = part["start_ns"][keep], part["end_ns"][keep]
    latency = end - start
    row: dict[str, Any] = {"samples": int(latency.size), "warmup_samples": int(part["warmup"].sum())}
    samples = {"latency_ns": latency, "start_ns": start}
    if latency.size:
        duration = (int(end.max()) - int(start.min())) / 1e9
        row["duration_s"] = duration
        row["throughput_avg"] = latency.size * cell.batch_size / duration if duration > 0 else float("nan")
        row.update(latency_summary(latency))
        time_split(parts, row, samples)
    return row, samples


def summarise_closed(parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
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
    samples = {"latency_ns": latency, "start_ns": start}
    if latency.size:
        time_split(parts, row, samples)
    return row, samples


def summarise_open(parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
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


class InferRequests(Requests):
    """A call of the prepared model: `ctx.prepared.fn(*ctx.prepared.inputs)`, then the target's sync."""

    verb = "infer"

    def check(self, cell: Cell, profile: str) -> None:
        if profile == "open" and cell.rate_qps is None and cell.p99_bound_ms is None:
            from bench.errors import UsageError

            raise UsageError("--find-max-rate needs --p99-bound MS (the p99 latency the rate must keep)")

    def closed(self, ctx: WorkerContext, cell: Cell, in_flight: int, leader: bool) -> dict[str, np.ndarray]:
        p = ctx.prepared
        return run_closed_loop(p.fn, p.inputs, ctx.target, cell, in_flight, ctx.stop_event, leader)

    def open(self, ctx: WorkerContext, cell: Cell, start_ns: int | None) -> dict[str, np.ndarray]:
        prepared, target = ctx.prepared, ctx.target
        if prepared is None:
            raise RuntimeError("measure before prepare")
        fn, inputs = prepared.fn, prepared.inputs
        return run_open_loop(lambda: fn(*inputs), target.sync, target.thread_context, cell,
                             share=ctx.index, n_shares=cell.n_models, start_ns=start_ns, stop_event=ctx.stop_event)

    def profile_pass(self, ctx: WorkerContext, cell: Cell, capture) -> int:
        """Calls one after another, as the latency loop makes them: the first sizes the pass
        (bench.targets.profiling.calls_for)."""
        import time

        from bench.targets.profiling import calls_for

        p, target = ctx.prepared, ctx.target
        n, made = 1, 0
        with target.thread_context():
            while made < n:
                t0 = time.perf_counter()
                with capture.request():
                    p.fn(*p.inputs)
                    target.sync()
                if made == 0:
                    n = calls_for(time.perf_counter() - t0)
                made += 1
        return made

    def summarise(self, parts, cell: Cell, profile: str):
        return {"single": summarise_single, "closed": summarise_closed, "open": summarise_open}[profile](parts, cell)


INFER = InferRequests()
