"""Execute a Plan cell by cell: start workers, prepare (compile/load), measure, record.

Cells are grouped so that a model's worker processes (imports, model build) are reused
across its cells. Every cell ends as exactly one row, whatever happens: a cell that
raises, crashes its worker or hangs becomes a `failed` row and the sweep goes on.
The orchestrator only sleeps while workers run (blocking waits, no polling loop).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any

from bench import env as host_env
from bench import scenarios, targets
from bench.analysis import stats
from bench.execute.worker import (
    KEEP_FREED_MEMORY_ENV,
    WorkerDied,
    WorkerError,
    WorkerProcess,
    WorkerTimeout,
)
from bench.paths import cache_dir as default_cache_dir
from bench.results import SCHEMA_VERSION, RunStore, read_meta
from bench.spec import Cell, Plan

PREPARE_TIMEOUT_S = 3600.0  # compiling a large model for Neuron can take many minutes
_preload_set = False


def _context(start_method: str):
    global _preload_set
    ctx = mp.get_context(start_method)
    if start_method == "forkserver" and not _preload_set:
        # The server imports torch + transformers once; each worker forks from it.
        ctx.set_forkserver_preload(["bench.execute.preload"])
        _preload_set = True
    return ctx


class WorkerPool:
    """The worker processes of one model group (one per model copy), started on demand."""

    def __init__(self, target: targets.Target, model_ref, extra_env: dict[str, str] | None = None):
        self.target = target
        self.model_ref = model_ref
        self.extra_env = extra_env or {}
        self.ctx = _context(target.start_method)
        self.stop_event = self.ctx.Event()
        self.procs: list[WorkerProcess] = []
        self.device: dict[str, Any] = {}
        self.keep_freed_memory = False

    def ensure(self, cell: Cell) -> list[WorkerProcess]:
        keep = cell.measure.keep_freed_memory
        if self.procs and keep != self.keep_freed_memory:
            self.close()  # malloc's settings hold for a process's life: start afresh
        self.keep_freed_memory = keep
        while len(self.procs) < cell.n_models:
            i = len(self.procs)
            env = {**self.extra_env, **self.target.worker_env(cell, i)}
            if keep:
                env[KEEP_FREED_MEMORY_ENV] = "1"
            self.procs.append(WorkerProcess(self.ctx, cell.target, self.model_ref, i, self.stop_event, env))
        return self.procs[: cell.n_models]

    def close(self) -> None:
        for p in self.procs:
            p.close()
        self.procs = []

    def kill(self) -> None:
        for p in self.procs:
            p.kill()
        self.procs = []


def _call(proc: WorkerProcess, op: str, payload: dict[str, Any], timeout_s: float) -> Any:
    proc.send(op, payload)
    return proc.recv(timeout_s)


def _faults_per_request(parts: list) -> float | None:
    """Minor page faults in the measuring processes per request issued (warm-up included)."""
    faults = [p.pop("minor_faults", None) for p in parts if isinstance(p, dict)]
    requests = sum(len(p["start_ns"]) for p in parts if isinstance(p, dict) and "start_ns" in p)
    if not requests or None in faults or len(faults) != len(parts):
        return None
    return round(sum(faults) / requests, 1)


def execute_cell(pool: WorkerPool, cell: Cell, cache_root: Path) -> tuple[dict[str, Any], dict | None]:
    """Run one cell on the pool; returns (row fields, raw samples). Never raises for the cell's faults."""
    row: dict[str, Any] = {}
    try:
        procs = pool.ensure(cell)
        prep_timeout = cell.measure.cell_timeout_s or PREPARE_TIMEOUT_S
        for i, proc in enumerate(procs):
            prep = _call(proc, "prepare", {"cell": cell, "leader": i == 0, "cache_root": str(cache_root)},
                         prep_timeout)
            ready_at = prep.pop("ready_at", None)
            if i == 0:
                # process start + imports (+ forkserver start on a run's first worker), when paid
                row["worker_start_s"] = ready_at - proc.created if ready_at is not None else None
                pool.device.update(prep.pop("device", {}))
                row.update({k: v for k, v in prep.items() if k not in ("accuracy_ok", "accuracy_error")})
                accuracy_ok, accuracy_error = prep.get("accuracy_ok", True), prep.get("accuracy_error", "")
        pool.stop_event.clear()
        watcher = pool.target.watch(cell)  # e.g. neuron-monitor during throughput cells
        try:
            # one absolute start time for every process (CLOCK_MONOTONIC): server's shared schedule
            start_ns = time.perf_counter_ns() + 50_000_000 + 5_000_000 * len(procs)
            for i, proc in enumerate(procs):
                proc.send("measure", {"cell": cell, "leader": i == 0, "start_ns": start_ns})
            parts = [proc.recv(_measure_timeout(cell, row.get("first_call_ms"))) for proc in procs]
        finally:
            if watcher is not None:
                row.update(watcher.stop())
    except WorkerError as exc:
        return dict(row, status="failed", error=str(exc), error_detail=exc.detail[-4000:]), None
    except (WorkerDied, WorkerTimeout) as exc:
        pool.kill()  # a dead or hung worker takes its siblings with it; the next cell restarts
        return dict(row, status="failed", error=str(exc)), None
    row["page_faults_per_request"] = _faults_per_request(parts)
    summary, samples = scenarios.get(cell.scenario).summarise(parts, cell)
    row.update(summary)
    row["stability"] = summary["stability"] if "stability" in summary else stats.instability(summary, cell.scenario)
    if row.get("device_latency_ms_p50") is not None and row.get("latency_ms_p50") is not None:
        # what the host adds to the device's own execution time (a device monitor's figure)
        row["host_overhead_ms_p50"] = row["latency_ms_p50"] - row["device_latency_ms_p50"]
    if row.get("device_error"):  # the device reported hardware or numerical errors
        row.update(status="failed", error=row["device_error"])
    elif not accuracy_ok:
        row.update(status="inaccurate", error=accuracy_error)
    elif not summary.get("samples"):
        row.update(status="failed", error="no samples were measured")
    elif row["stability"]:
        row.update(status="unstable", error=row["stability"])
    else:
        row.update(status="ok", error="")
    return row, samples


def _measure_timeout(cell: Cell, first_call_ms: float | None) -> float:
    """The cell's timeout, or a default that leaves room for min_samples slow requests."""
    m = cell.measure
    if m.cell_timeout_s is not None:
        return float(m.cell_timeout_s)
    per_request_s = (first_call_ms or 0.0) / 1e3
    return m.timeout_s + 3 * m.min_samples * per_request_s


def _base_row(cell: Cell, run_id: str, environment: dict[str, Any]) -> dict[str, Any]:
    m = cell.measure
    return {
        "run_id": run_id, "cell_id": cell.cell_id, **cell.key(),
        "warmup_s": m.warmup_s, "min_duration_s": m.min_duration_s, "max_duration_s": m.max_s,
        "min_samples": m.min_samples, "target_ci": m.target_ci, "trim_s": m.trim_s,
        "keep_freed_memory": m.keep_freed_memory,
        **environment, "target_notes": cell.target_notes,
        **targets.get(cell.target).cell_facts(cell),
    }


def run_plan(plan: Plan, out: str | Path = "results", *, resume: str | Path | None = None,
             cache_dir: str | Path | None = None, instance: str | None = None,
             progress: bool = True, on_row: Callable[[dict[str, Any]], None] | None = None,
             worker_memory_gb: float | None = None, executor=None) -> Path:
    """Run every cell of `plan` not yet recorded; returns the run directory.

    With `resume`, rows go to that run directory and cells it already holds are skipped.
    `worker_memory_gb` caps each worker's address space (a runaway allocation becomes a
    failed row instead of the OOM killer's target).
    `executor`: None or "local" runs the cells here, one after another; "ray" or a
    `bench.execute.executors.RayExecutor(...)` runs each cell as a Ray task (see bench/executors.py).
    """
    extra_env = {"TRNBENCH_WORKER_MEMORY_GB": str(worker_memory_gb)} if worker_memory_gb else {}
    _check_weights(plan)
    environment = host_env.capture(instance)
    if executor is not None and executor != "local":
        from bench.execute.executors import run_with

        return run_with(executor, plan, out, resume, environment, cache_dir, progress, on_row, extra_env)
    if resume is not None:
        from bench.execute.executors import refuse_local_resume

        refuse_local_resume(read_meta(Path(resume)), resume)  # a run placed per instance type needs Ray
        store = RunStore(Path(resume))
        done = store.done_ids()
    else:
        store = RunStore.create(out, plan.to_dict(), environment)
        done = set()
    lock = store.lock()
    try:
        return _run_cells(plan, store, done, environment, cache_dir, progress, on_row, extra_env)
    finally:
        lock.close()


def _check_weights(plan: Plan) -> None:
    from bench import models

    for name, weights in sorted({(c.model_name, c.weights) for c in plan.cells if c.weights != "random"}):
        models.check_weights(models.card(name), weights)


def execute(pool: WorkerPool, cell: Cell, cache_root: Path,
            record: Callable[[Cell, dict[str, Any], dict | None], None] | None = None):
    """`execute_cell`, or the scenario's own `execute` hook: the server's max-rate search runs
    several measurements on the pool and hands each to `record` (which writes it as a row)."""
    hook = scenarios.hook(cell.scenario, "execute")
    if hook is None:
        return execute_cell(pool, cell, cache_root)
    return hook(pool, cell, cache_root, record)


def _recorder(store: RunStore, environment: dict[str, Any], pool: WorkerPool, on_row):
    """`record(cell, fields, samples)`: a row for an extra measurement a scenario's `execute` made."""

    def record(cell: Cell, fields: dict[str, Any], samples: dict | None) -> None:
        row = _base_row(cell, store.run_id, environment)
        row.update(pool.device)
        row.update(fields)
        row.update(timestamp=time.time(), schema_version=SCHEMA_VERSION)
        store.append(row, samples)
        if on_row:
            on_row(row)

    return record


def _run_cells(plan: Plan, store: RunStore, done: set[str], environment: dict[str, Any],
               cache_dir: str | Path | None, progress: bool, on_row, extra_env: dict[str, str]) -> Path:
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir() / "artifacts"
    todo = [c for c in plan.ordered() if c.cell_id not in done]
    availability = {name: targets.get(name).availability() for name in {c.target for c in todo}}
    with _progress(progress, len(todo)) as bar:
        for _, group in groupby(todo, key=Cell.worker_group):
            cells = list(group)
            target = targets.get(cells[0].target)
            pool = None if not availability[cells[0].target].ok else WorkerPool(target, cells[0].model, extra_env)
            try:
                for cell in cells:
                    bar.show(cell)
                    row = _base_row(cell, store.run_id, environment)
                    samples = None
                    if pool is None:
                        row.update(status="skipped",
                                   error=f"target {cell.target} unavailable: {availability[cell.target].reason}")
                    else:
                        record = _recorder(store, environment, pool, on_row)
                        fields, samples = execute(pool, cell, cache_root, record)
                        row.update(pool.device)
                        row.update(fields)
                    row.update(timestamp=time.time(), schema_version=SCHEMA_VERSION)
                    store.append(row, samples)
                    bar.advance(row)
                    if on_row:
                        on_row(row)
            except BaseException:  # Ctrl-C or a bug: no worker outlives the run
                if pool is not None:
                    pool.kill()
                raise
            if pool is not None:
                pool.close()
    return store.path


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def show(self, cell: Cell) -> None:
        pass

    def advance(self, row: dict[str, Any]) -> None:
        pass


class _RichProgress(_NoProgress):
    """A progress bar with an ETA, on stderr so that stdout stays machine-readable."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task("starting", total=total)
        self.failed = 0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def show(self, cell: Cell) -> None:
        self.progress.update(self.task, description=cell.label[:60].ljust(60))

    def advance(self, row: dict[str, Any]) -> None:
        if row["status"] not in ("ok", "unstable"):
            self.failed += 1
            self.progress.console.print(f"[yellow]{row['status']}[/]: {row.get('model')} "
                                        f"{row.get('compiler')} {row.get('scenario')} b{row.get('batch_size')}: "
                                        f"{row.get('error', '')}")
        self.progress.advance(self.task)


def _progress(enabled: bool, total: int):
    return _RichProgress(total) if enabled and total else _NoProgress()

