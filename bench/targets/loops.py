"""How a worker applies load: keep N requests in flight (a closed loop: latency, throughput),
or follow an arrival schedule (an open loop: server). Shared by every target whose requests
are calls into the worker (bench.targets.infer); a target with requests of its own kind (the
endpoint's streamed HTTP requests) uses the schedule and keeps its own loop.

Closed loop: each of `n_threads` threads issues one request at a time: perf_counter_ns, call,
target sync, perf_counter_ns. Requests that start before the warm-up ends are kept but
flagged (recorded, not counted). Thread 0 of the leader process applies the stopping rule to
its own samples and sets the shared stop event; every other thread stops when it sees it.
There is no other time limit here: the minimums (duration and samples) always hold, and a
leader that dies or hangs is the orchestrator's to kill (the cell timeout).

Open loop: see bench.scenarios.server for what a row means. Requests arrive on the seeded
schedule (`build_schedule`, bench.targets.arrivals); the process's share is served by
`workers_per_model` threads, each taking the earliest request not yet taken, sleeping until
its time and spinning the last SPIN_NS; latency counts from the scheduled time.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.plan.cell import Cell, Measure
from bench.stats.stop import StopRule
from bench.targets import arrivals

CHECK_EVERY_NS = 20_000_000  # how often a thread looks at the stop event
RULE_EVERY_NS = 100_000_000  # how often the leader evaluates the stopping rule


def run_closed_loop(fn: Callable[..., Any], inputs: tuple, target, cell: Cell, n_threads: int, stop_event,
                    leader: bool) -> dict[str, np.ndarray]:
    m = cell.measure
    rule = StopRule(m.min_duration_s, m.max_s, m.min_samples, m.target_ci)
    begin = time.perf_counter_ns()
    warm_end = begin + int(m.warmup_s * 1e9)
    min_ns = int(m.min_duration_s * 1e9)
    done = threading.Event()
    # Plain lists: list.append is the cheapest store CPython has (array('q').append costs
    # ~10 % of an identity model's loop); the ints they keep are ~70 bytes a request.
    results: list[tuple[list[int], list[int]]] = [([], []) for _ in range(n_threads)]
    # where the target syncs, when each call returned: the request's time splits into the call
    # and the wait for the device after it (its own list per thread)
    returned: list[list[int]] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []

    sync = target.sync
    needs_sync = not getattr(target, "sync_is_noop", False)  # skip the call where sync is a no-op (CPU)

    def issue(index: int) -> None:
        starts, ends = results[index]
        append_start, append_end = starts.append, ends.append
        append_returned = returned[index].append
        decides = leader and index == 0
        pc = time.perf_counter_ns
        next_check = begin + CHECK_EVERY_NS
        next_rule = warm_end
        try:
            with target.thread_context():
                while True:
                    t0 = pc()
                    fn(*inputs)
                    if needs_sync:
                        append_returned(pc())
                        sync()
                    t1 = pc()
                    append_start(t0)
                    append_end(t1)
                    if t1 < next_check:
                        continue
                    next_check = t1 + CHECK_EVERY_NS
                    if done.is_set():
                        break
                    if stop_event is not None and stop_event.is_set():
                        break
                    if decides and t1 >= next_rule:
                        k = bisect.bisect_left(starts, warm_end)
                        stop = rule.decide(len(starts) - k, (t1 - warm_end) / 1e9,
                                           lambda k=k: (np.array(ends[k:], dtype=np.int64)
                                                        - np.array(starts[k:], dtype=np.int64)))
                        if stop:
                            break
                        # look again when the minimum duration is reached (a short round then
                        # lasts what it asked for, not up to 0.1 s more), else in 0.1 s, or
                        # later when looking is costly (millions of samples), so the rule never
                        # takes more than ~2 % of the loop's time
                        next_rule = (warm_end + min_ns if t1 < warm_end + min_ns
                                     else pc() + max(RULE_EVERY_NS, 50 * (pc() - t1)))
        except BaseException as exc:  # reported to the orchestrator as the cell's error
            errors.append(exc)
        finally:
            if decides or errors:
                done.set()
                if stop_event is not None:
                    stop_event.set()

    threads = [threading.Thread(target=issue, args=(i,), daemon=True) for i in range(1, n_threads)]
    for t in threads:
        t.start()
    issue(0)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    start = np.concatenate([np.array(s, dtype=np.int64) for s, _ in results])
    end = np.concatenate([np.array(e, dtype=np.int64) for _, e in results])
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    out = {"start_ns": start, "end_ns": end, "warmup": start < warm_end}
    if needs_sync:
        out["returned_ns"] = np.concatenate([np.array(r, dtype=np.int64) for r in returned])[order]
    return out


SPIN_NS = 80_000  # the last 80 us before a send time are spun rather than slept


MAX_SLEEP_S = 0.05  # a waiting thread looks for a stop request at least this often


LOCAL_LEAD_NS = 20_000_000  # start offset when no common start time was given


OVER_FRACTION = 0.01  # p99: more than 1 % of the requests over the bound puts p99 over it


MIN_DRAIN_S = 1.0


KEEP_UP = 0.9  # achieved / scheduled rate under this is INVALID even without a bound


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
