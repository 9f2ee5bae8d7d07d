"""The closed-loop request issuer shared by `latency` and `throughput` (runs in a worker).

Each of `n_threads` threads issues one request at a time: perf_counter_ns, call, target
sync, perf_counter_ns. Requests that start before the warm-up ends are kept but flagged
(recorded, not counted). Thread 0 of the leader process applies the stopping rule to its
own samples and sets the shared stop event; every other thread stops when it sees it.
There is no other time limit here: the minimums (duration and samples) always hold, and a
leader that dies or hangs is the orchestrator's to kill (the cell timeout).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.spec import Cell
from bench.stats import StopRule

CHECK_EVERY_NS = 20_000_000  # how often a thread looks at the stop event
RULE_EVERY_NS = 100_000_000  # how often the leader evaluates the stopping rule


def run_closed_loop(call: Callable[[], Any], sync: Callable[[], None], context: Callable[[], Any],
                    cell: Cell, n_threads: int, stop_event, leader: bool) -> dict[str, np.ndarray]:
    m = cell.measure
    rule = StopRule(m.min_duration_s, m.max_s, m.min_samples, m.target_ci)
    begin = time.perf_counter_ns()
    warm_end = begin + int(m.warmup_s * 1e9)
    done = threading.Event()
    results: list[tuple[list[int], list[int]]] = [([], []) for _ in range(n_threads)]
    errors: list[BaseException] = []

    def issue(index: int) -> None:
        starts, ends = results[index]
        decides = leader and index == 0
        pc = time.perf_counter_ns
        next_check = begin + CHECK_EVERY_NS
        next_rule = warm_end
        try:
            with context():
                while True:
                    t0 = pc()
                    call()
                    sync()
                    t1 = pc()
                    starts.append(t0)
                    ends.append(t1)
                    if t1 < next_check:
                        continue
                    next_check = t1 + CHECK_EVERY_NS
                    if done.is_set():
                        break
                    if stop_event is not None and stop_event.is_set():
                        break
                    if decides and t1 >= next_rule:
                        next_rule = t1 + RULE_EVERY_NS
                        k = bisect.bisect_left(starts, warm_end)
                        measured = np.subtract(ends[k:], starts[k:])
                        if rule.should_stop(measured, (t1 - warm_end) / 1e9):
                            break
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
    start = np.concatenate([np.asarray(s, dtype=np.int64) for s, _ in results])
    end = np.concatenate([np.asarray(e, dtype=np.int64) for _, e in results])
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    return {"start_ns": start, "end_ns": end, "warmup": start < warm_end}
