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

from bench.plan.cell import Cell
from bench.stats.stop import StopRule
from bench.targets.base import Target

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
    errors: list[BaseException] = []

    sync = target.sync
    needs_sync = type(target).sync is not Target.sync  # skip the call where sync is a no-op (CPU)

    def issue(index: int) -> None:
        starts, ends = results[index]
        append_start, append_end = starts.append, ends.append
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
    return {"start_ns": start, "end_ns": end, "warmup": start < warm_end}
