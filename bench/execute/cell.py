"""One cell, start to row: prepare on the pool, measure, summarise, judge; never raises for the cell's faults.

- `run_cell(pool, cell, cache_root, record)`: what every executor calls for a cell; the cell's
  scenario decides how many measurements it takes (one, or the server's max-rate search,
  whose probes go to `record`).
- `measure_cell(pool, cell, cache_root)`: one measurement -> (row fields, raw samples).
- `build_row(cell, run_id, environment, ...)`: the one place a result row is assembled.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import scenarios, targets
from bench.execute.hoststate import Window, busy_reason
from bench.execute.pool import (
    PREPARE_TIMEOUT_S,
    WorkerDied,
    WorkerError,
    WorkerPool,
    WorkerProcess,
    WorkerTimeout,
)
from bench.plan.cell import Cell
from bench.results import prices
from bench.results.schema import SCHEMA_VERSION
from bench.results.status import decide
from bench.scenarios.base import MeasureReport, RecordFn


def _call(proc: WorkerProcess, op: str, payload: dict[str, Any], timeout_s: float) -> Any:
    proc.send(op, payload)
    return proc.recv(timeout_s)


def _faults_per_request(reports: list[MeasureReport]) -> float | None:
    """Minor page faults in the measuring processes per request issued (warm-up included)."""
    requests = sum(len(r.arrays["start_ns"]) for r in reports if "start_ns" in r.arrays)
    if not requests or any(r.minor_faults is None for r in reports):
        return None
    return round(sum(r.minor_faults for r in reports) / requests, 1)


def measure_cell(pool: WorkerPool, cell: Cell, cache_root: Path) -> tuple[dict[str, Any], dict | None]:
    """One measurement of a cell on the pool: (row fields, raw samples). Never raises for the cell's faults."""
    row: dict[str, Any] = {}
    scenario = scenarios.of(cell)
    try:
        procs = pool.ensure(cell)
        prep_timeout = cell.measure.cell_timeout_s or PREPARE_TIMEOUT_S
        def payload(i: int) -> dict[str, Any]:
            return {"cell": cell, "leader": i == 0, "cache_root": str(cache_root)}

        # the leader first (it compiles into the cache), then the other copies side by side
        reports = [_call(procs[0], "prepare", payload(0), prep_timeout)]
        for i, proc in enumerate(procs[1:], 1):
            proc.send("prepare", payload(i))
        try:
            reports += [proc.recv(prep_timeout) for proc in procs[1:]]
        except WorkerError:
            pool.kill()  # the other copies' replies would be read as the next cell's
            raise
        for i, (proc, prep) in enumerate(zip(procs, reports)):
            if i == 0:
                # process start + imports (+ forkserver start on a run's first worker), when paid
                row["worker_start_s"] = prep.ready_at - proc.created if prep.ready_at is not None else None
                pool.device.update(prep.device or {})
                row.update(prep.row_fields())
                accuracy_ok, accuracy_error = prep.accuracy_ok, prep.accuracy_error
        pool.stop_event.clear()
        watcher = pool.target.watch(cell)  # e.g. neuron-monitor during throughput cells
        window = Window.start()  # whose CPU the host spent while this cell measured
        try:
            # one absolute start time for every process (CLOCK_MONOTONIC): server's shared schedule
            start_ns = time.perf_counter_ns() + 50_000_000 + 5_000_000 * len(procs)
            for i, proc in enumerate(procs):
                proc.send("measure", {"cell": cell, "leader": i == 0, "start_ns": start_ns})
            measured = [proc.recv(_measure_timeout(cell, row.get("first_call_ms"))) for proc in procs]
        finally:
            if watcher is not None:
                row.update(watcher.stop())
    except WorkerError as exc:
        return decide(dict(row, error_detail=exc.detail[-4000:]), failed=str(exc)), None
    except (WorkerDied, WorkerTimeout) as exc:
        pool.kill()  # a dead or hung worker takes its siblings with it; the next cell restarts
        return decide(row, failed=str(exc)), None
    row.update(window.finish(sum(r.cpu_s or 0.0 for r in measured)))
    row["page_faults_per_request"] = _faults_per_request(measured)
    summary, samples = scenario.summarise([r.arrays for r in measured], cell)
    row = scenario.finish({**row, **summary}, cell)
    spread = summary["stability"] if "stability" in summary else scenario.stability(summary, cell)
    row["host_busy"] = busy_reason(row)
    row["stability"] = "; ".join(r for r in (row["host_busy"], spread) if r)
    row.update(host_overhead(row))
    failure = (row.get("device_error")  # the device reported hardware or numerical errors
               or row.pop("fatal", None)  # measured, but it cannot stand (a training loss not finite)
               or (None if summary.get("samples") else summary.get("failure") or "no samples were measured"))
    inaccurate = row.pop("inaccurate", None) or (None if accuracy_ok else accuracy_error)
    row = decide(row, failed=failure, inaccurate=inaccurate)
    return row, samples


PROFILES = "profiles"  # the run directory's folder of profiled passes, one folder per cell
CAPTURE_CLOSE_S = 120.0  # a profiled worker of its own: how long its runtime may take to write as it ends


def profile_cell(pool: WorkerPool, cell: Cell, cache_root: Path, run_dir: Path) -> dict[str, Any]:
    """`--profile`: one untimed pass of a measured cell under its target's profiler; its files
    in `profiles/<cell_id>/`, and the row columns that point at them and sum them up. Never
    raises for the cell's faults: a pass that fails or has no profiler says so in the row."""
    import json

    from bench.targets import profiling

    why = scenarios.requests_of(cell).no_profile(cell)
    if why:  # said before any worker starts (a --dp cell's ranks)
        return {"profile_note": why}
    out = Path(run_dir) / PROFILES / cell.cell_id
    target = pool.target
    payload = {"cell": cell, "dir": str(out), "cache_root": str(cache_root)}
    # the pass may prepare the cell again (its workers gone since, a resumed run): a preparation's time
    timeout_s = cell.measure.cell_timeout_s or PREPARE_TIMEOUT_S
    began = time.perf_counter()
    try:
        profiling.clear(out)
        env = target.profile_env(cell, out)
        if env is None:
            summary = _call(pool.ensure(replace(cell, n_models=1))[0], "profile", payload, timeout_s)
        else:  # a worker of its own, the capture set before its runtime starts
            proc = pool.own_process(cell, env)
            try:
                summary = _call(proc, "profile", payload, timeout_s)
            finally:
                proc.close(timeout_s=CAPTURE_CLOSE_S)  # the runtime writes its capture as the process ends
        summary = target.profile_summary(cell, out, summary)
    except WorkerError as exc:
        refused = str(exc).startswith(profiling.ProfileRefused.__name__)
        return {"profile_note": str(exc).partition(": ")[2] if refused else f"the profiled pass failed: {exc}"}
    except (WorkerDied, WorkerTimeout) as exc:
        pool.kill()
        return {"profile_note": f"the profiled pass failed: {exc}"}
    except OSError as exc:  # the profile folder, or a capture tool that cannot run: the row still stands
        return {"profile_note": f"the profiled pass failed: {exc}"}
    fields = {"profile_dir": f"{PROFILES}/{cell.cell_id}", "profile_tool": summary.get("tool"),
              "profile_pass_s": round(time.perf_counter() - began, 3), "profile_step_ms": summary.get("step_ms"),
              "profile_ops_share": summary.get("ops_share"), "profile_device_ms": summary.get("device_ms"),
              "profile_note": summary.get("note") or None}
    if summary.get("top_ops"):
        fields["profile_top_ops"] = json.dumps(summary["top_ops"])
        fields["profile_summary"] = _in_words(summary["top_ops"], summary.get("ops_share"))
    return fields


def _in_words(top: list[dict[str, Any]], ops_share: float | None) -> str:
    """'aten::addmm 9.5%, aten::gelu 4.5%, aten::copy_ 2.6% of the step (operators 39%)'."""
    text = ", ".join(f"{o['op']} {100 * o['share']:.1f}%" for o in top[:3] if isinstance(o.get("share"), float))
    return text + " of the step" + (f" (operators {ops_share:.0%})" if isinstance(ops_share, float) else "")


def host_overhead(row: dict[str, Any]) -> dict[str, Any]:
    """What the host adds to the device's own execution time (a device monitor's figure):
    `host_overhead_ms_p50`, and where the request's time was split (bench.targets.infer
    `time_split`) its parts: the host's time inside the call beyond the device's execution
    (the runtime, copies in and out), and the wait in the sync after the call returned."""
    latency, device = row.get("latency_ms_p50"), row.get("device_latency_ms_p50")
    if not all(isinstance(v, (int, float)) for v in (latency, device)):
        return {}
    overhead = latency - device
    call, wait = row.get("call_ms_p50"), row.get("sync_ms_p50")
    if not all(isinstance(v, (int, float)) for v in (call, wait)):
        return {"host_overhead_ms_p50": overhead}
    in_call = call - device
    return {"host_overhead_ms_p50": overhead, "host_in_call_ms_p50": in_call,
            "host_overhead_note": (f"the host adds {overhead:.3g} ms to the device's {device:.3g} ms (p50s): "
                                   f"{in_call:.3g} ms inside the call beyond the device's execution (runtime, "
                                   f"copies in and out), {wait:.3g} ms in the sync after it returned, nothing "
                                   "before it (the inputs are ready before timing)")}


def _measure_timeout(cell: Cell, first_call_ms: float | None) -> float:
    """The cell's timeout, or a default that leaves room for min_samples slow requests."""
    m = cell.measure
    if m.cell_timeout_s is not None:
        return float(m.cell_timeout_s)
    per_request_s = (first_call_ms or 0.0) / 1e3
    return m.timeout_s + 3 * m.min_samples * per_request_s


def build_row(cell: Cell, run_id: str, environment: dict[str, Any], device: dict[str, Any] | None = None,
              fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A result row: the cell's key and settings, the host, the device, the measurement's fields."""
    m = cell.measure
    row = {
        "run_id": run_id, "cell_id": cell.cell_id, **cell.key(),
        "warmup_s": m.warmup_s, "min_duration_s": m.min_duration_s, "max_duration_s": m.max_s,
        "min_samples": m.min_samples, "target_ci": m.target_ci, "trim_s": m.trim_s,
        "keep_freed_memory": m.keep_freed_memory, "fresh_process_per_round": m.fresh_process_per_round,
        **environment, "target_notes": cell.target_notes,
        **targets.get(cell.target).cell_facts(cell),
        **(device or {}), **(fields or {}),
    }
    if "price_per_hour" not in row:  # the run's price, else the table's for this node's instance
        row.update(prices.price_fields(row.get("instance_type")))
    row.update(prices.cost_fields(row))
    row.update(timestamp=time.time(), schema_version=SCHEMA_VERSION)
    return row


def run_cell(pool: WorkerPool, cell: Cell, cache_root: Path, record: RecordFn | None = None):
    """A cell on its pool, as its scenario runs it: one measurement, or several (the server's
    max-rate search), each extra one handed to `record` (which writes it as a row)."""
    return scenarios.of(cell).execute(lambda c: measure_cell(pool, c, cache_root), cell, record)
