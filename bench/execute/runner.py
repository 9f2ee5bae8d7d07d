"""The one cell runner: every executor's round loop, persistence, resume and status decision.

A plan's cells are measured in rounds spread over the run (bench.execute.rounds): pass r
measures round r of every cell that still wants one, in the plan's order; a cell beside its
control, or the two sides of `ab`, in pairs whose order alternates (A B in even rounds, B A
in odd ones). After its planned rounds a cell whose interval is still wide gets more, the
widest first, while the run's `round_budget_s` lasts. Every round is kept as it ends
(rounds.jsonl, samples/<id>.r<k>.npz); a cell's row is written once its last round is in,
from all of them (`combine`, then `judge`, the one place a row's status is decided with
bench.execute.cell.measure_cell for a single measurement). `resume` takes the kept rounds
back, so a run killed at any write boundary, resumed, records every cell exactly once.
With `--profile`, a measured cell's row waits until every cell of the run is measured; then
each cell's profiled pass is taken (`Measurer.profile`), in the plan's order, and its row
written, so a pass never runs between another cell's rounds (its rounds are kept until then).

Where a round is measured is the executor's: a `Measurer` (bench.execute.local: worker pools
here; bench.execute.ray: Ray tasks on a cluster) takes a pass's rounds and hands back each
round's result. An executor only schedules and persists through this runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.execute.cell import build_row
from bench.execute.rounds import (
    BROKEN,
    beside_control,
    combine,
    control_id,
    interval_width,
    judge,
    most_rounds,
    planned_rounds,
    wants_more,
)
from bench.plan.cell import Cell
from bench.results.status import decide
from bench.results.store import RunStore, crash_point


@dataclass(frozen=True)
class Unit:
    """One row to be (or a control's windows beside one): a cell, where it is recorded, and
    how its rounds are told apart. `on`: the instance type it is placed on (Ray's --on);
    `beside`: for a control's windows, the unit whose row they join; `side`, `python`,
    `spawn_env`: `ab`'s side B in processes of its own, maybe under another interpreter."""

    cell: Cell
    store: RunStore
    on: str | None = None
    beside: Unit | None = None
    side: str = ""
    python: str | None = None
    spawn_env: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def row_id(self) -> str:
        """The cell_id of its row: the plain cell_id, `@TYPE` when placed on an instance type."""
        return self.cell.cell_id if not self.on else f"{self.cell.cell_id}@{self.on}"

    @property
    def record_id(self) -> str:
        """What its rounds are kept under (a control's windows: `<cell_id>~control`)."""
        return control_id(self.beside.cell) if self.beside is not None else self.row_id

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.store.path), self.record_id)


@dataclass
class RoundResult:
    """One round of a unit, as its measurer reports it: the row fields and raw samples, the
    extra rows the scenario recorded (a max-rate search's probes), and the facts of where it
    ran (the environment and device columns, and the executor's own: `ray_node_id`)."""

    fields: dict[str, Any]
    samples: dict | None
    extras: list[tuple[Cell, dict[str, Any], dict | None]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] | None = None
    row_extra: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0


class Measurer(Protocol):
    """Where rounds are measured (an executor's part)."""

    def measure(self, items: list[tuple[Unit, int]], runner: CellRunner) -> Iterator[tuple[Unit, int, RoundResult]]:
        """Measure each (unit, round index) in `items`, in this order where it matters (pairs),
        yielding each result as it is in; `runner.wanted(unit)` says whether it is still wanted."""
        ...

    def finished(self, unit: Unit) -> None:
        """`unit` has its row: its processes may go when its group has no more rounds."""

    def end_round(self) -> None:
        """A pass is over."""

    def profile(self, unit: Unit) -> dict[str, Any]:
        """`--profile`: the unit's profiled pass, once its rounds are in; the row columns it adds."""
        ...


class CellRunner:
    """Measures units round by round through a Measurer and writes their rows (see the module
    docstring). `pairs`: units measured back to back, the first first in even rounds (a cell
    and its control's windows beside it, whose row waits for both; ab's two sides)."""

    def __init__(self, units: list[Unit], bar, on_row: Callable[[dict[str, Any]], None] | None = None,
                 pairs: list[tuple[Unit, Unit]] = ()) -> None:
        self.units = units
        self.pairs = list(pairs)
        self.bar = bar
        self.on_row = on_row
        self.partner = {b.key: a for a, b in self.pairs} | {a.key: b for a, b in self.pairs}
        self.leads = {a.key for a, _ in self.pairs}
        # a cell and its control's windows: neither's row is written alone
        self.joint = {u.key for a, b in self.pairs if a.beside is not None or b.beside is not None for u in (a, b)}
        self.results: dict[tuple[str, str], list[tuple[dict[str, Any], dict | None]]] = {}
        self.last: dict[tuple[str, str], RoundResult] = {}  # each unit's latest round (where it ran)
        self.done: set[tuple[str, str]] = set()
        # --profile: a measured cell's row waits for its profiled pass, taken once every cell of
        # the run is measured (a pass never runs between another cell's rounds)
        self.pending: dict[tuple[str, str], tuple[Unit, dict[str, Any], dict | None, RoundResult | None]] = {}

    # -- the passes -----------------------------------------------------------------------------

    def run(self, measurer: Measurer) -> None:
        """Every unit to its row: the planned rounds of all, pass by pass, then the extra
        rounds of the widest within the run's budget."""
        budget = _budget(self.units)
        for r in range(max((most_rounds(u.cell) for u in self.units), default=0)):
            order: list[Unit] = []
            for u in self.units:
                if u.key in self.partner:  # a pair at its first's place, each side that is due
                    if u.key in self.leads:
                        pair = (u, self.partner[u.key]) if r % 2 == 0 else (self.partner[u.key], u)
                        order += [x for x in pair if r < planned_rounds(x.cell) and self._due(x, r)]
                elif r < planned_rounds(u.cell) and self._due(u, r):
                    order.append(u)
            if order:
                self._measure(measurer, [(u, r) for u in order])
            extra = [u for u in self.units if r >= planned_rounds(u.cell) and u.key not in self.partner
                     and self.wanted(u) and self.results.get(u.key)]
            spent = 0.0
            for u in sorted(extra, key=lambda u: -interval_width(u.cell, self.results[u.key])):
                if budget - spent <= 0:
                    self.conclude(u)  # the run's budget for more is spent: its row from what it has
                    continue
                self.bar.grow(1)
                spent += self._measure(measurer, [(u, r)])
            budget -= spent
            for pair in self.pairs:
                self._conclude_pair(*pair)
            for u in self.units:
                if u.key in self.done or u.key in self.pending:
                    measurer.finished(u)
            measurer.end_round()
        self._profile_pending(measurer)

    def _profile_pending(self, measurer: Measurer) -> None:
        """--profile: each measured cell's pass, in the plan's order, then its row. A kill here
        leaves the cells' rounds kept (rounds.jsonl): resume takes the passes again."""
        waiting = [u for u in self.units if u.key in self.pending]
        for i, unit in enumerate(waiting):
            _, fields, samples, where = self.pending.pop(unit.key)
            fields = {**fields, **measurer.profile(unit)}
            crash_point("profile")
            self._write(unit, fields, samples, where)
            following = waiting[i + 1] if i + 1 < len(waiting) else None
            if following is None or following.cell.worker_group() != unit.cell.worker_group():
                measurer.finished(unit)  # the group's processes go before the next group's start

    def _measure(self, measurer: Measurer, items: list[tuple[Unit, int]]) -> float:
        spent = 0.0
        for unit, r, result in measurer.measure(items, self):
            spent += result.elapsed_s
            self.record(unit, r, result)
        return spent

    def _due(self, unit: Unit, r: int) -> bool:
        have = self.results.get(unit.key) or []
        return (unit.key not in self.done and unit.key not in self.pending and len(have) <= r
                and (not have or wants_more(unit.cell, have)))

    def wanted(self, unit: Unit) -> bool:
        """Whether `unit` (no row yet) wants another round after those it has."""
        have = self.results.get(unit.key) or []
        return unit.key not in self.done and unit.key not in self.pending and (not have or wants_more(unit.cell, have))

    # -- persistence ------------------------------------------------------------------------------

    def record(self, unit: Unit, r: int, result: RoundResult) -> None:
        """Keep one round (rounds.jsonl when the cell has rounds); write the row when it was the
        last (a cell beside its control waits for both: `_conclude_pair`)."""
        if result.fields.get("status") == "skipped":  # nothing measured: its row says why
            self._write(unit, result.fields, None, result)
            return
        have = self.results.setdefault(unit.key, [])
        have.append((result.fields, result.samples))
        self.last[unit.key] = result
        for cell, fields, samples in result.extras:
            self._row(unit, cell, fields, samples, result)
        if planned_rounds(unit.cell) > 1 or unit.cell.measure.profile:  # a profiled row waits: its round is kept
            line = dict(self._row_fields(unit, unit.cell, result.fields, result), round=r)
            if unit.beside is not None:
                line.update(cell_id=unit.record_id, control_of=unit.beside.row_id)
            unit.store.append_round(line, result.samples)
        if unit.key not in self.joint and not wants_more(unit.cell, have):
            self.conclude(unit)
        else:
            self.bar.advance(result.fields, quiet=True)

    def conclude(self, unit: Unit) -> None:
        """The unit's row from all its rounds (measured now, or kept by a killed run)."""
        if unit.key in self.done or unit.key in self.pending or not self.results.get(unit.key):
            return
        fields, samples = combine(unit.cell, self.results[unit.key])
        if planned_rounds(unit.cell) > 1:
            fields = judge(unit.cell, fields)
        self._finish(unit, fields, samples, self.last.get(unit.key))

    def _finish(self, unit: Unit, fields: dict[str, Any], samples: dict | None, where: RoundResult | None) -> None:
        """The row now, or (--profile, a cell that was measured) once the run's passes are taken."""
        if unit.cell.measure.profile and fields.get("status") not in BROKEN and unit.beside is None:
            self.pending[unit.key] = (unit, fields, samples, where)
            return
        self._write(unit, fields, samples, where)

    def _conclude_pair(self, a: Unit, b: Unit) -> None:
        """A cell and its control's windows beside it: the row once both have their rounds."""
        twin_unit, cell_unit = (a, b) if a.beside is not None else (b, a)
        if twin_unit.beside is None:  # ab's sides: each its own row, as it ends
            return
        mine, theirs = self.results.get(cell_unit.key) or [], self.results.get(twin_unit.key) or []
        if cell_unit.key in self.done or cell_unit.key in self.pending or not mine or wants_more(cell_unit.cell, mine):
            return
        broken = any(f.get("status") in BROKEN for f, _ in mine)
        if not broken and theirs and wants_more(twin_unit.cell, theirs):
            return
        fields, samples = combine(cell_unit.cell, mine)
        fields = judge(cell_unit.cell, fields) if planned_rounds(cell_unit.cell) > 1 else fields
        control = combine(twin_unit.cell, theirs) if theirs else (decide({}, failed="not measured"), None)
        fields, samples = beside_control(cell_unit.cell, fields, samples, twin_unit.cell, *control)
        self._finish(cell_unit, fields, samples, self.last.get(cell_unit.key))
        self.done.add(twin_unit.key)

    def _row_fields(self, unit: Unit, cell: Cell, fields: dict[str, Any], where: RoundResult | None) -> dict[str, Any]:
        row = build_row(cell, unit.store.run_id, where.environment if where is not None else {},
                        where.device if where is not None else None, fields)
        if where is not None:
            row.update(where.row_extra)
        if unit.on:  # one row per cell and instance type: the id says which
            row.update(cell_id=f"{row['cell_id']}@{unit.on}", on_instance=unit.on)
        return row

    def _row(self, unit: Unit, cell: Cell, fields: dict[str, Any], samples: dict | None,
             where: RoundResult | None) -> dict[str, Any]:
        row = self._row_fields(unit, cell, fields, where)
        unit.store.append(row, samples)
        if self.on_row:
            self.on_row(row)
        return row

    def _write(self, unit: Unit, fields: dict[str, Any], samples: dict | None, where: RoundResult | None) -> None:
        row = self._row(unit, unit.cell, fields, samples, where)
        self.done.add(unit.key)
        self.bar.advance(row)

    # -- resume -----------------------------------------------------------------------------------

    def resume(self) -> None:
        """Take back the rounds a killed run kept (rounds.jsonl) for units it did not finish; a
        unit whose rounds are all in gets its row now. A kept round's line holds every column
        its row needs (build_row wrote them), so the row is built from it alone."""
        kept: dict[str, dict[str, list]] = {}
        for unit in self.units:
            rounds = kept.setdefault(str(unit.store.path), unit.store.rounds_done())
            have = self.results.setdefault(unit.key, [])
            for line in rounds.get(unit.record_id, []):
                fields = {k: v for k, v in line.items() if k not in ("round", "control_of")}
                have.append((fields, unit.store.round_samples(unit.record_id, int(line["round"]))))
            if have and unit.key not in self.joint and not wants_more(unit.cell, have):
                for fields, _ in have[:-1]:  # killed between its last round and its row
                    self.bar.advance(fields, quiet=True)
                self.conclude(unit)
            else:
                for fields, _ in have:
                    self.bar.advance(fields, quiet=True)
        for pair in self.pairs:
            self._conclude_pair(*pair)


def _budget(units: list[Unit]) -> float:
    budgets = [u.cell.measure.round_budget_s for u in units if u.cell.measure.round_budget_s is not None
               and most_rounds(u.cell) > planned_rounds(u.cell)]
    return min(budgets) if budgets else float("inf")
