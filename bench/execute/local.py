"""The local executor: every cell of a plan here, one after another, in its model group's pool.

Cells are grouped so that a model's worker processes (imports, model build) are reused
across its cells. Every cell ends as exactly one row, whatever happens: a cell that
raises, crashes its worker or hangs becomes a `failed` row and the sweep goes on.
The orchestrator only sleeps while workers run (blocking waits, no polling loop).
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import Any

from bench import targets
from bench.errors import UsageError
from bench.execute.cell import build_row, run_cell
from bench.execute.pool import WorkerPool
from bench.paths import cache_dir as default_cache_dir
from bench.plan.cell import Cell
from bench.plan.grid import Plan
from bench.results.store import RunStore


def placed_on(meta: dict[str, Any]) -> list[str]:
    """The instance types a run's cells were placed on (run.json's plan "on"), or []."""
    plan = meta.get("plan") if isinstance(meta, dict) else None
    on = plan.get("on") if isinstance(plan, dict) else None
    return [str(x) for x in on] if isinstance(on, list) else []


def refuse_local_resume(meta: dict[str, Any], run_dir: str | Path) -> None:
    """A run whose cells were placed per instance type can only be finished by Ray."""
    on = placed_on(meta)
    if on:
        raise UsageError(f"{run_dir} ran every cell on instance types {','.join(on)} through Ray: "
                         "resume it with --executor ray (and --ray-address of the cluster)")


class LocalExecutor:
    """The default: every cell in this process's worker pools, one after another."""

    name = "local"

    def start(self, environment: dict[str, Any]) -> None:
        pass

    def stop(self) -> None:
        pass

    def plan_meta(self) -> dict[str, Any]:
        return {}

    def resume_from(self, meta: dict[str, Any], run_dir) -> None:
        refuse_local_resume(meta, run_dir)

    def run(self, plan: Plan, store: RunStore, done: set[str], environment: dict[str, Any],
            cache_dir: str | Path | None, progress: bool, on_row, extra_env: dict[str, str]) -> Path:
        """Every cell of `plan` not in `done`, grouped by model so a group's processes are reused."""
        cache_root = Path(cache_dir) if cache_dir else default_cache_dir() / "artifacts"
        todo = [c for c in plan.ordered() if c.cell_id not in done]
        availability = {name: targets.get(name).availability() for name in {c.target for c in todo}}
        with progress_bar(progress, len(todo)) as bar:
            for _, group in groupby(todo, key=Cell.worker_group):
                cells = list(group)
                target = targets.get(cells[0].target)
                pool = None if not availability[cells[0].target].ok else WorkerPool(target, cells[0].model, extra_env)
                try:
                    for cell in cells:
                        bar.show(cell)
                        samples = None
                        if pool is None:
                            row = build_row(cell, store.run_id, environment, fields={
                                "status": "skipped",
                                "error": f"target {cell.target} unavailable: {availability[cell.target].reason}"})
                        else:
                            record = _recorder(store, environment, pool, on_row)
                            fields, samples = run_cell(pool, cell, cache_root, record)
                            row = build_row(cell, store.run_id, environment, pool.device, fields)
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


def _recorder(store: RunStore, environment: dict[str, Any], pool: WorkerPool, on_row):
    """`record(cell, fields, samples)`: a row for an extra measurement a scenario's `execute` made."""

    def record(cell: Cell, fields: dict[str, Any], samples: dict | None) -> None:
        row = build_row(cell, store.run_id, environment, pool.device, fields)
        store.append(row, samples)
        if on_row:
            on_row(row)

    return record


class NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def show(self, cell: Cell) -> None:
        pass

    def advance(self, row: dict[str, Any]) -> None:
        pass


class RichProgress(NoProgress):
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


def progress_bar(enabled: bool, total: int):
    return RichProgress(total) if enabled and total else NoProgress()
