"""A scenario outside bench/ that runs on every target with a request verb: a concurrency sweep.

A load profile, not a way of making requests: it measures the closed loop at 1, 2 and 4
requests in flight through `ctx.requests` (a call into the worker's model on cpu, a streamed
HTTP request on the endpoint, whichever the target's verb is), records each as a probe row,
and reports the concurrency that served the most. Named as "tests.support.plugin_sweep:SWEEP".
"""

from __future__ import annotations

from dataclasses import replace

from bench.scenarios.base import Column, Scenario

LEVELS = (1, 2, 4)


class SweepScenario(Scenario):
    profile = "closed"
    columns = (Column("best in flight", "best_concurrency", 0),)

    def plan(self, cell):
        return replace(cell, n_models=1, workers_per_model=cell.workers_per_model or LEVELS[0])

    def measure(self, ctx, cell, leader, start_ns):
        return ctx.requests.closed(ctx, cell, cell.workers_per_model, leader)

    def execute(self, measure, cell, record):
        best = None
        for k in LEVELS:
            probe = replace(cell, workers_per_model=k)
            fields, samples = measure(probe)
            fields = dict(fields, search_role="probe", search_of=cell.cell_id)
            if record is not None:
                record(probe, fields, samples)
            if fields.get("status") in ("ok", "unstable") and (best is None or fields["throughput_avg"] > best[0]):
                best = (fields["throughput_avg"], k, fields, samples)
        if best is None:
            return dict(fields, search_role="result", search_probes=len(LEVELS)), None
        _, k, fields, samples = best
        return dict(fields, search_role="result", search_probes=len(LEVELS), best_concurrency=k), samples


SWEEP = SweepScenario()
