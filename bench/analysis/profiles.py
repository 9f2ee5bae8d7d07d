"""Profiled passes (`--profile`) read back: each cell's operator shares, and what moved between two runs.

A profiled row points at `profiles/<cell_id>/` in its run directory (bench.targets.profiling
wrote it): `ops.csv` holds every operator's share of the pass's wall time, the row itself the
top five (`profile_top_ops`). Comparing two profiled runs lists, per cell, the operators whose
share changed most: a figure that moved and the operator that moved it, side by side.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIFTS = 5  # operators listed per cell


def top_ops(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The row's top operators ([] when it was not profiled or the column is unreadable)."""
    try:
        ops = json.loads(row.get("profile_top_ops") or "[]")
    except (TypeError, ValueError):
        return []
    return [o for o in ops if isinstance(o, dict) and "op" in o] if isinstance(ops, list) else []


def profile_path(row: dict[str, Any]) -> Path | None:
    """The row's profile folder, when it has one and it is there."""
    rel, run_dir = row.get("profile_dir"), row.get("_run_dir")
    if not rel or not run_dir:
        return None
    path = Path(run_dir) / str(rel)
    return path if path.is_dir() else None


def shares(row: dict[str, Any]) -> dict[str, float]:
    """Every operator's share of the pass (ops.csv), else the row's top five."""
    path = profile_path(row)
    out: dict[str, float] = {}
    if path is not None and (path / "ops.csv").is_file():
        with open(path / "ops.csv", newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                try:
                    out[r["op"]] = out.get(r["op"], 0.0) + float(r["share"])
                except (KeyError, TypeError, ValueError):
                    continue
        if out:
            return out
    return {o["op"]: float(o["share"]) for o in top_ops(row) if isinstance(o.get("share"), (int, float))}


@dataclass(frozen=True)
class OpShift:
    op: str
    share_a: float
    share_b: float

    @property
    def change(self) -> float:
        """In points of the pass's wall time (0.05: five points more of it in B)."""
        return self.share_b - self.share_a


def op_shifts(row_a: dict[str, Any], row_b: dict[str, Any], n: int = SHIFTS) -> list[OpShift]:
    """The `n` operators whose share of the pass moved most from A to B ([] unless both were profiled)."""
    a, b = shares(row_a), shares(row_b)
    if not a or not b:
        return []
    moved = [OpShift(op, a.get(op, 0.0), b.get(op, 0.0)) for op in set(a) | set(b)]
    moved.sort(key=lambda s: (-abs(s.change), s.op))
    return [s for s in moved[:n] if s.change != 0.0]
