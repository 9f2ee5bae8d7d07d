"""A scenario defined outside bench/: bursts of back-to-back requests with idle gaps between.

It is what a user would write to add a way of applying load (MLPerf's MultiStream is of this
shape): a `bench.scenarios.base.Scenario` subclass, named on the command line or in a plan
as "tests.support.plugin_scenario:BURSTS". tests/e2e/test_plugin_scenario.py runs it end to end.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from bench.scenarios.base import Column, Scenario
from bench.stats.summary import latency_summary

BURST = 8  # requests back to back
GAP_S = 0.005  # idle between bursts


class BurstScenario(Scenario):
    verbs = ("infer",)  # it calls the worker's model itself (see plugin_sweep for one on every target)
    columns = (Column("bursts", "bursts", 0), Column("burst ms p50", "burst_ms_p50"))

    def plan(self, cell):
        return replace(cell, n_models=1, workers_per_model=1)  # one stream

    def measure(self, ctx, cell, leader, start_ns):
        fn, inputs = ctx.prepared.fn, ctx.prepared.inputs
        m = cell.measure
        starts, ends = [], []
        pc = time.perf_counter_ns
        begin = pc()
        with ctx.target.thread_context():
            while (pc() - begin) / 1e9 < m.warmup_s + m.min_duration_s or len(starts) < m.min_samples:
                for _ in range(BURST):
                    t0 = pc()
                    fn(*inputs)
                    ctx.target.sync()
                    starts.append(t0)
                    ends.append(pc())
                time.sleep(GAP_S)
        start = np.asarray(starts, dtype=np.int64)
        return {"start_ns": start, "end_ns": np.asarray(ends, dtype=np.int64),
                "warmup": start < begin + int(m.warmup_s * 1e9)}

    def summarise(self, parts, cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        p = parts[0]
        keep = ~p["warmup"]
        start, end = p["start_ns"][keep], p["end_ns"][keep]
        latency = end - start
        n = latency.size - latency.size % BURST
        bursts = (end[:n].reshape(-1, BURST)[:, -1] - start[:n].reshape(-1, BURST)[:, 0]) / 1e6
        row = {"samples": int(latency.size), "warmup_samples": int((~keep).sum()), "bursts": len(bursts),
               "burst_ms_p50": float(np.median(bursts)) if len(bursts) else None, **latency_summary(latency)}
        return row, {"latency_ns": latency, "start_ns": start}


BURSTS = BurstScenario()
