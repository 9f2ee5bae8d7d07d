"""The local executor: every cell of a plan here, one after another, in its model group's pool.

Cells are grouped so that a model's worker processes (imports, model build) are reused
across its cells. Every cell ends as exactly one row, whatever happens: a cell that
raises, crashes its worker or hangs becomes a `failed` row and the sweep goes on.
The orchestrator only sleeps while workers run (blocking waits, no polling loop).
"""

from __future__ import annotations

import math
import time
from itertools import groupby
from pathlib import Path
from typing import Any

from bench import targets
from bench.errors import UsageError
from bench.execute.cell import build_row, run_cell
from bench.execute.pool import WorkerPool
from bench.execute.rounds import (
    BROKEN,
    beside_control,
    combine,
    control_id,
    interval_width,
    judge,
    measure_round,
    most_rounds,
    pair_rounds,
    paired,
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
    pairs_control = True  # run --control: the control's windows beside each cell's (measure_pair)

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
        for most plans); cells are grouped by model so a group's processes are reused. With a
        control (`plan.control`), each other cell is measured in short paired rounds, its
        control's window and its own back to back (in A B B A order), as `ab` pairs its sides."""
        todo = [c for c in plan.ordered() if c.cell_id not in done]
        twins = control_twins(plan, todo)
        todo = [paired(c, pair_rounds(c)) if c.cell_id in twins else c for c in todo]
        twins = {c.cell_id: paired(twins[c.cell_id], c.measure.rounds) for c in todo if c.cell_id in twins}
        total = sum(2 * planned_rounds(c) + 1 if c.cell_id in twins else planned_rounds(c) for c in todo)
        with progress_bar(progress, total) as bar:
            runner = RoundRunner(environment, cache_dir, extra_env, on_row, bar, rewarm=bool(twins))
            runner.resume(store, todo, twins)
            budget = ExtraRounds(todo)
            try:
                for r in range(max((most_rounds(c) for c in todo), default=0)):
                    for _, group in groupby(todo, key=Cell.worker_group):
                        cells = list(group)
                        for cell in cells:
                            if cell.cell_id in twins:
                                runner.measure_pair(cell, twins[cell.cell_id], store, r)
                            elif r < planned_rounds(cell):
                                runner.measure_round(cell, store, r)
                        if all(runner.finished(c) for c in cells):
                            runner.close_pool(cells[0])  # a group measured out: free its processes
                    budget.spend(runner, store, r)
                    runner.end_round()
            except BaseException:  # Ctrl-C or a bug: no worker outlives the run
                runner.kill()
                raise
            runner.close()
        return store.path


class ExtraRounds:
    """Rounds beyond the planned ones, to the cells whose intervals are still wide: the widest
    first, while the run's `round_budget_s` of measuring lasts; when it is spent, every cell
    still waiting gets its row from the rounds it has."""

    def __init__(self, cells: list[Cell]) -> None:
        self.cells = [c for c in cells if most_rounds(c) > planned_rounds(c)]
        budgets = [c.measure.round_budget_s for c in self.cells if c.measure.round_budget_s is not None]
        self.left = min(budgets) if budgets else math.inf

    def spend(self, runner: RoundRunner, store: RunStore, round_index: int) -> None:
        """Round `round_index` of every cell past its planned rounds that wants more."""
        wanting = [c for c in self.cells if round_index >= planned_rounds(c) and runner.wants(c, store)]
        for cell in sorted(wanting, key=lambda c: -runner.width(c, store)):
            if self.left <= 0:
                runner.conclude_now(cell, store)
                continue
            runner.bar.grow(1)
            began = time.perf_counter()
            runner.measure_round(cell, store, round_index)
            self.left -= time.perf_counter() - began


def control_twins(plan: Plan, cells: list[Cell]) -> dict[str, Cell]:
    """cell_id -> the control's cell measured beside it (none without a control, or for the
    control's own cells)."""
    if plan.control is None:
        return {}
    return {c.cell_id: plan.control_twin(c) for c in cells if c.model_name != str(plan.control)}


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
        self.last_cell_in: dict[int, str] = {}  # the cell_id measured last in each pool
        self._availability: dict[str, Any] = {}

    def resume(self, store: RunStore, cells: list[Cell], twins: dict[str, Cell] | None = None) -> None:
        """Take back the rounds a killed run kept (rounds.jsonl) for cells it did not finish
        (and for their control's windows, `twins`); a cell whose rounds are all in gets its row."""
        kept = store.rounds_done()
        twins = twins or {}

        def take_back(record_id: str) -> list:
            have = self.results.setdefault((str(store.path), record_id), [])
            for row in kept.get(record_id, []):
                fields = {k: v for k, v in row.items() if k not in ("round", "control_of")}
                have.append((fields, store.round_samples(record_id, int(row["round"]))))
            return have

        for cell in cells:
            have = take_back(cell.cell_id)
            twin = twins.get(cell.cell_id)
            if twin is not None:
                theirs = take_back(control_id(cell))
                for fields, _ in have + theirs:
                    self.bar.advance(fields, quiet=True)
                self._conclude_pair(cell, twin, store, None)
            elif have and not wants_more(cell, have):  # killed between its last round and its row
                for fields, _ in have[:-1]:
                    self.bar.advance(fields, quiet=True)
                self._conclude(cell, store, (str(store.path), cell.cell_id), None)
            else:
                for fields, _ in have:
                    self.bar.advance(fields, quiet=True)

    def wants(self, cell: Cell, store: RunStore) -> bool:
        """Whether `cell` (no row yet) wants another round after those it has."""
        key = (str(store.path), cell.cell_id)
        have = self.results.get(key) or []
        return key not in self.done and bool(have) and wants_more(cell, have)

    def width(self, cell: Cell, store: RunStore) -> float:
        return interval_width(cell, self.results.get((str(store.path), cell.cell_id)) or [])

    def conclude_now(self, cell: Cell, store: RunStore) -> None:
        """The cell's row from the rounds it has (the run's budget for more is spent)."""
        key = (str(store.path), cell.cell_id)
        if key not in self.done and self.results.get(key):
            self._conclude(cell, store, key, self.pools.get((cell.worker_group(), None, "")))

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

    def measure_pair(self, cell: Cell, twin: Cell, store: RunStore, round_index: int) -> None:
        """Round `round_index` of `cell` and of its control's window beside it (`twin`), the
        control first in even rounds and second in odd ones; the cell's row once both are in."""
        sides = [(twin, control_id(cell)), (cell, None)]
        for one, record_id in (sides if round_index % 2 == 0 else sides[::-1]):
            if (str(store.path), cell.cell_id) not in self.done:
                self.measure_round(one, store, round_index, record_id=record_id, conclude=False,
                                   control_of=cell.cell_id if record_id else None)
        self._conclude_pair(cell, twin, store, self.pools.get((cell.worker_group(), None, "")))

    def _conclude_pair(self, cell: Cell, twin: Cell, store: RunStore, pool: WorkerPool | None) -> None:
        key, twin_key = (str(store.path), cell.cell_id), (str(store.path), control_id(cell))
        mine, theirs = self.results.get(key) or [], self.results.get(twin_key) or []
        if key in self.done or not mine or wants_more(cell, mine):
            return
        broken = any(f.get("status") in BROKEN for f, _ in mine)
        if not broken and theirs and wants_more(twin, theirs):
            return
        fields, samples = combine(cell, mine)
        fields = judge(cell, fields) if planned_rounds(cell) > 1 else fields
        control = combine(twin, theirs) if theirs else ({"status": "failed", "error": "not measured"}, None)
        self._finish(cell, store, key, beside_control(cell, fields, samples, twin, *control), pool)

    def measure_round(self, cell: Cell, store: RunStore, round_index: int, python: str | None = None,
                      side: str = "", spawn_env: dict[str, str] | None = None, record_id: str | None = None,
                      conclude: bool = True, control_of: str | None = None) -> None:
        """Round `round_index` of `cell` (nothing if it is done or had it already). `record_id`:
        the id its rounds are kept under (a control's window: `control_id` of the cell it is
        beside, `control_of`); `conclude`: write the row when the last round is in."""
        key = (str(store.path), record_id or cell.cell_id)
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
        self.last_cell_in[id(pool)] = cell.cell_id
        rounds = planned_rounds(cell)
        if rounds > 1:
            line = dict(build_row(cell, store.run_id, self.environment, pool.device, fields), round=round_index)
            if record_id:
                line.update(cell_id=record_id, control_of=control_of)
            store.append_round(line, samples)
        if conclude and not wants_more(cell, have):
            self._conclude(cell, store, key, pool)
        else:
            self.bar.advance(fields, quiet=True)

    def _conclude(self, cell: Cell, store: RunStore, key: tuple[str, str], pool: WorkerPool | None) -> None:
        """The cell's row from all its rounds (measured now, or kept by a killed run)."""
        combined, pooled = combine(cell, self.results[key])
        if planned_rounds(cell) > 1:
            combined = judge(cell, combined)
        self._finish(cell, store, key, (combined, pooled), pool)

    def _warmth(self, cell: Cell, key: tuple[str, str], have: list, pool: WorkerPool) -> str:
        """The warm-up a round needs (Measure.per_round): none right after this cell's own
        previous round; in `ab` and beside a control, a short one when its processes ran
        nothing but this cell since (a control's windows beside several cells are one cell)
        while the other side ran; else the full one."""
        if not have or cell.measure.fresh_process_per_round or self.last_cell_in.get(id(pool)) != cell.cell_id:
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

    def grow(self, n: int) -> None:
        """`n` more rounds than planned (a wide interval's extra rounds)."""


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

    def grow(self, n: int) -> None:
        self.progress.update(self.task, total=self.progress.tasks[0].total + n)


def progress_bar(enabled: bool, total: int):
    return RichProgress(total) if enabled and total else NoProgress()
