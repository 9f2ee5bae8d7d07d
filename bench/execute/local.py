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
from bench.execute.rounds import (
    combine,
    judge,
    measure_round,
    most_rounds,
    planned_rounds,
    round_cell,
    wants_more,
)
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
        """Every cell of `plan` not in `done`: round 1 of every cell, then round 2, ... (one round
        for most plans); cells are grouped by model so a group's processes are reused."""
        todo = [c for c in plan.ordered() if c.cell_id not in done]
        total = sum(planned_rounds(c) for c in todo)
        with progress_bar(progress, total) as bar:
            runner = RoundRunner(environment, cache_dir, extra_env, on_row, bar)
            runner.resume(store, todo)
            try:
                for r in range(max((most_rounds(c) for c in todo), default=0)):
                    for _, group in groupby(todo, key=Cell.worker_group):
                        cells = list(group)
                        for cell in cells:
                            runner.measure_round(cell, store, r)
                        if all(runner.finished(c) for c in cells):
                            runner.close_pool(cells[0])  # a group measured out: free its processes
                    runner.end_round()
            except BaseException:  # Ctrl-C or a bug: no worker outlives the run
                runner.kill()
                raise
            runner.close()
        return store.path


class RoundRunner:
    """Measures cells round by round on pools it keeps, and writes each cell's row when its
    last round is in (bench.execute.rounds). Shared by `run` and `ab`."""

    def __init__(self, environment: dict[str, Any], cache_dir: str | Path | None, extra_env: dict[str, str],
                 on_row, bar, rewarm: bool = False) -> None:
        self.environment = environment
        # `ab`: a round whose processes did nothing since the cell's previous round warms up
        # briefly even though the other side ran meanwhile (its windows are 50 ms)
        self.rewarm = rewarm
        self.cache_root = Path(cache_dir) if cache_dir else default_cache_dir() / "artifacts"
        self.extra_env = extra_env
        self.on_row = on_row
        self.bar = bar
        self.pools: dict[tuple, WorkerPool] = {}
        self.results: dict[tuple[str, str], list[tuple[dict[str, Any], dict | None]]] = {}
        self.done: set[tuple[str, str]] = set()
        self.fresh: bool = False
        self.last: tuple[str, str] | None = None  # the (run, cell) whose round was measured last
        self.last_in: dict[int, tuple[str, str]] = {}  # the same, per worker pool (id of the pool)
        self._availability: dict[str, Any] = {}

    def resume(self, store: RunStore, cells: list[Cell]) -> None:
        """Take back the rounds a killed run kept (rounds.jsonl) for cells it did not finish."""
        kept = store.rounds_done()
        for cell in cells:
            for row in kept.get(cell.cell_id, []):
                fields = {k: v for k, v in row.items() if k != "round"}
                self.results.setdefault((str(store.path), cell.cell_id), []).append(
                    (fields, store.round_samples(cell.cell_id, int(row["round"]))))
                self.bar.advance(fields, quiet=True)

    def finished(self, cell: Cell, store: RunStore | None = None) -> bool:
        return any(cid == cell.cell_id for _, cid in self.done) if store is None else (
            (str(store.path), cell.cell_id) in self.done)

    def _pool(self, cell: Cell, python: str | None, side: str, spawn_env: dict[str, str] | None) -> WorkerPool | None:
        if cell.target not in self._availability:
            self._availability[cell.target] = targets.get(cell.target).availability()
        if not self._availability[cell.target].ok:
            return None
        key = (cell.worker_group(), python, side)  # ab: each side in processes of its own
        if key not in self.pools:
            self.pools[key] = WorkerPool(targets.get(cell.target), cell.model, self.extra_env, python=python,
                                         spawn_env=spawn_env)
        return self.pools[key]

    def measure_round(self, cell: Cell, store: RunStore, round_index: int, python: str | None = None,
                      side: str = "", spawn_env: dict[str, str] | None = None) -> None:
        """Round `round_index` of `cell` (nothing if it is done or had it already)."""
        key = (str(store.path), cell.cell_id)
        have = self.results.setdefault(key, [])
        if key in self.done or len(have) > round_index or (have and not wants_more(cell, have)):
            return
        self.fresh = self.fresh or cell.measure.fresh_process_per_round
        self.bar.show(cell, round_index, planned_rounds(cell))
        pool = self._pool(cell, python, side, spawn_env)
        if pool is None:
            reason = self._availability[cell.target].reason
            self._finish(cell, store, key, ({"status": "skipped", "error": f"target {cell.target} unavailable: {reason}"},
                                            None), pool)
            return
        record = _recorder(store, self.environment, pool, self.on_row)
        measured = round_cell(cell, self._warmth(cell, key, have, pool))
        fields, samples = measure_round(lambda rec: run_cell(pool, measured, self.cache_root, rec), cell, record)
        have.append((fields, samples))
        self.last = self.last_in[id(pool)] = key
        rounds = planned_rounds(cell)
        if rounds > 1:
            store.append_round(dict(build_row(cell, store.run_id, self.environment, pool.device, fields),
                                    round=round_index), samples)
        if not wants_more(cell, have):
            combined, pooled = combine(cell, have)
            if rounds > 1:
                combined = judge(cell, combined)
            self._finish(cell, store, key, (combined, pooled), pool)
        else:
            self.bar.advance(fields, quiet=True)

    def _warmth(self, cell: Cell, key: tuple[str, str], have: list, pool: WorkerPool) -> str:
        """The warm-up a round needs (Measure.per_round): none right after this cell's own
        previous round; in `ab`, a short one when its processes did nothing else since but
        the other side ran; else the full one."""
        if not have or cell.measure.fresh_process_per_round or self.last_in.get(id(pool)) != key:
            return "cold"
        if self.last == key:
            return "warm"
        return "rewarm" if self.rewarm else "cold"

    def _finish(self, cell: Cell, store: RunStore, key, result, pool: WorkerPool | None) -> None:
        fields, samples = result
        row = build_row(cell, store.run_id, self.environment, pool.device if pool else None, fields)
        store.append(row, samples)
        self.done.add(key)
        self.bar.advance(row)
        if self.on_row:
            self.on_row(row)

    def close_pool(self, cell: Cell) -> None:
        for key in [k for k in self.pools if k[0] == cell.worker_group()]:
            self.pools.pop(key).close()

    def end_round(self) -> None:
        if self.fresh:  # --fresh-process-per-round: every round in new worker processes
            self.close()

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools = {}

    def kill(self) -> None:
        for pool in self.pools.values():
            pool.kill()
        self.pools = {}


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

    def show(self, cell: Cell, round_index: int = 0, rounds: int = 1) -> None:
        pass

    def advance(self, row: dict[str, Any], quiet: bool = False) -> None:
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

    def show(self, cell: Cell, round_index: int = 0, rounds: int = 1) -> None:
        prefix = f"round {round_index + 1}/{rounds}: " if rounds > 1 else ""
        self.progress.update(self.task, description=(prefix + cell.label)[:60].ljust(60))

    def advance(self, row: dict[str, Any], quiet: bool = False) -> None:
        """One round (or cell) done; `quiet`: an intermediate round, not reported in words."""
        if not quiet and row.get("status") not in ("ok", "unstable"):
            self.failed += 1
            self.progress.console.print(f"[yellow]{row['status']}[/]: {row.get('model')} "
                                        f"{row.get('compiler')} {row.get('scenario')} b{row.get('batch_size')}: "
                                        f"{row.get('error', '')}")
        self.progress.advance(self.task)


def progress_bar(enabled: bool, total: int):
    return RichProgress(total) if enabled and total else NoProgress()
