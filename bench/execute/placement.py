"""What a cell asks Ray for is its target's to say (bench.targets.base.Target.ray_need: NeuronCores,
GPUs, a plug-in accelerator's own resource, CPUs, an instance type); here only the row id a
placement gets and the call every executor makes."""

from __future__ import annotations

from bench.plan.cell import Cell
from bench.targets.base import INSTANCE, Need

__all__ = ["INSTANCE", "Need", "need_for", "placed_id"]


def placed_id(cell: Cell, on: str | None) -> str:
    """The row id of `cell` placed on instance type `on` (the plain cell_id without `on`)."""
    return cell.cell_id if not on else f"{cell.cell_id}@{on}"


def need_for(cell: Cell, on: str | None, nodes: list[dict[str, float]]) -> Need:
    """What the cell asks Ray for, given the live nodes' totals (its target decides)."""
    from bench import targets

    return targets.get(cell.target).ray_need(cell, on, nodes)
