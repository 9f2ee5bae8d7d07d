"""The local executor: every cell of a plan here, in this process's worker pools.

Cells are grouped so that a model's worker processes (imports, model build) are reused
across its cells; a group's processes go once all its cells have their rows. The round loop,
persistence, resume and status are the one cell runner's (bench.execute.runner); this module
only measures the rounds it is handed (`LocalMeasurer`). Every cell ends as exactly one row,
whatever happens: a cell that raises, crashes its worker or hangs becomes a `failed` row and
the sweep goes on. The orchestrator only sleeps while workers run (blocking waits, no
polling loop).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import targets
from bench.errors import UsageError
from bench.execute.cell import profile_cell, run_cell
from bench.execute.pool import WorkerPool
from bench.execute.progress import progress_bar
from bench.execute.rounds import measure_round, pair_rounds, paired, planned_rounds, round_cell
from bench.execute.runner import CellRunner, RoundResult, Unit
from bench.paths import cache_dir as default_cache_dir
from bench.plan.cell import Cell
from bench.plan.grid import Plan
from bench.results.status import decide
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


def plan_units(plan: Plan, store: RunStore, done: set[str], on: str | None = None) -> tuple[list[Unit], list]:
    """The units of a plan's cells not yet recorded, in the plan's order (a model group's cells
    together), and the pairs among them: with a control (`plan.control`), each other cell's
    control windows beside it, both in short paired rounds (as `ab` pairs its sides)."""
    units: list[Unit] = []
    pairs: list[tuple[Unit, Unit]] = []
    for cell in plan.ordered():
        unit = Unit(cell, store, on=on)
        if unit.row_id in done:
            continue
        if plan.control is None or cell.model_name == str(plan.control):
            units.append(unit)
            continue
        cell = paired(cell, pair_rounds(cell))
        twin = Unit(paired(plan.control_twin(cell), cell.measure.rounds), store, on=on, beside=Unit(cell, store, on=on))
        unit = Unit(cell, store, on=on)
        units += [unit, twin]
        pairs.append((twin, unit))  # the control's window first in even rounds
    return units, pairs


class LocalExecutor:
    """The default: every cell in this process's worker pools, one after another."""

    name = "local"
    pairs_control = True  # run --control: the control's windows beside each cell's
    profiles = True  # --profile: a pass in the cell's worker after its measurement

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
        """Every cell of `plan` not in `done`, round by round (bench.execute.runner)."""
        units, pairs = plan_units(plan, store, done)
        total = sum(planned_rounds(u.cell) for u in units) + sum(1 for a, b in pairs)
        with progress_bar(progress, total) as bar:
            runner = CellRunner(units, bar, on_row, pairs)
            measurer = LocalMeasurer(units, {str(store.path): environment}, cache_dir, extra_env, bar,
                                     rewarm=bool(pairs))
            runner.resume()
            try:
                runner.run(measurer)
            except BaseException:  # Ctrl-C or a bug: no worker outlives the run
                measurer.kill()
                raise
            measurer.close()
        return store.path


class LocalMeasurer:
    """Measures rounds in worker pools here: one pool per model group (and `ab` side), kept
    between rounds and cells, closed once its group's units all have their rows."""

    def __init__(self, units: list[Unit], environments: dict[str, dict[str, Any]], cache_dir: str | Path | None,
                 extra_env: dict[str, str], bar, rewarm: bool = False) -> None:
        self.units = units
        self.environments = environments  # run directory -> its environment columns (ab's sides differ)
        # `ab`, beside a control: a round whose processes did nothing since the cell's previous
        # round warms up briefly even though the other side ran meanwhile (its windows are 50 ms)
        self.rewarm = rewarm
        self.cache_root = Path(cache_dir) if cache_dir else default_cache_dir() / "artifacts"
        self.extra_env = extra_env
        self.bar = bar
        self.pools: dict[tuple, WorkerPool] = {}
        self.fresh = False
        self.last: tuple[str, str] | None = None  # the unit whose round was measured last
        self.last_cell_in: dict[int, str] = {}  # the cell_id measured last in each pool (id of the pool)
        self.rounds_in: dict[tuple[str, str], int] = {}  # rounds measured of each unit here
        self._availability: dict[str, Any] = {}
        self._finished: set[tuple[str, str]] = set()

    @staticmethod
    def _group(unit: Unit) -> tuple:
        return (unit.cell.worker_group(), unit.python, unit.side)  # ab: each side in processes of its own

    def _pool(self, unit: Unit) -> WorkerPool | None:
        cell = unit.cell
        if cell.target not in self._availability:
            self._availability[cell.target] = targets.get(cell.target).availability()
        if not self._availability[cell.target].ok:
            return None
        key = self._group(unit)
        if key not in self.pools:
            self.pools[key] = WorkerPool(targets.get(cell.target), cell.model, self.extra_env, python=unit.python,
                                         spawn_env=unit.spawn_env or None)
        return self.pools[key]

    def measure(self, items: list[tuple[Unit, int]], runner: CellRunner) -> Iterator[tuple[Unit, int, RoundResult]]:
        for unit, r in items:
            if not runner.wanted(unit):  # its pair's other side broke meanwhile
                continue
            yield unit, r, self.one(unit, r)

    def one(self, unit: Unit, r: int) -> RoundResult:
        cell = unit.cell
        self.fresh = self.fresh or cell.measure.fresh_process_per_round
        self.bar.show(cell, r, planned_rounds(cell))
        environment = self.environments.get(str(unit.store.path), {})
        pool = self._pool(unit)
        if pool is None:
            reason = self._availability[cell.target].reason
            return RoundResult(decide({}, skipped=f"target {cell.target} unavailable: {reason}"), None,
                               environment=environment)
        extras: list[tuple[Cell, dict[str, Any], dict | None]] = []
        began = time.perf_counter()
        measured = round_cell(cell, self._warmth(unit, pool))
        fields, samples = measure_round(lambda rec: run_cell(pool, measured, self.cache_root, rec), cell,
                                        lambda c, f, s: extras.append((c, f, s)))
        self.last = unit.key
        self.last_cell_in[id(pool)] = cell.cell_id
        self.rounds_in[unit.key] = self.rounds_in.get(unit.key, 0) + 1
        return RoundResult(fields, samples, extras, environment, pool.device, elapsed_s=time.perf_counter() - began)

    def profile(self, unit: Unit) -> dict[str, Any]:
        """`--profile`: the unit's profiled pass in its pool (bench.execute.cell.profile_cell)."""
        pool = self._pool(unit)
        if pool is None:
            return {}
        self.bar.show(unit.cell, what="profiling")
        return profile_cell(pool, unit.cell, self.cache_root, unit.store.path)

    def _warmth(self, unit: Unit, pool: WorkerPool) -> str:
        """The warm-up a round needs (Measure.per_round): none right after this unit's own
        previous round; in `ab` and beside a control, a short one when its processes ran
        nothing but this cell since (a control's windows beside several cells are one cell)
        while the other side ran; else the full one."""
        if (not self.rounds_in.get(unit.key) or unit.cell.measure.fresh_process_per_round
                or self.last_cell_in.get(id(pool)) != unit.cell.cell_id):
            return "cold"
        if self.last == unit.key:
            return "warm"
        return "rewarm" if self.rewarm else "cold"

    def finished(self, unit: Unit) -> None:
        """Close a group's processes once every unit of it has its row."""
        self._finished.add(unit.key)
        group = self._group(unit)
        if group in self.pools and all(u.key in self._finished for u in self.units if self._group(u) == group):
            self.pools.pop(group).close()

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
