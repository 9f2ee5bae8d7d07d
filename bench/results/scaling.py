"""Columns that need two rows of one run: a dp-N training cell against the same cell at dp 1.

scaling_efficiency = samples/s at dp N / (N x samples/s at dp 1), when the run has both:
1.0 is perfect data-parallel scaling, below it what the all-reduce and the shared host cost.
Computed as a run is read (bench.results.store.read_rows), so rows written in any order, or
by a resumed run, get it alike.
"""

from __future__ import annotations

from typing import Any

from bench.plan.cell import Cell

# the key of a dp-N cell's dp-1 twin: every key column but dp and the threads (a rank's own)
_TWIN_KEY = tuple(c for c in Cell.key_columns() if c not in ("dp", "threads_per_worker"))


def _base_key(row: dict[str, Any]) -> str:
    key = {c: row.get(c) for c in _TWIN_KEY}
    return repr(sorted(key.items()))


def add_scaling(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with scaling_efficiency set on dp > 1 train rows whose dp-1 twin is among them."""
    single = {_base_key(r): r.get("samples_per_s") for r in rows
              if r.get("scenario") == "train" and (r.get("dp") or 1) == 1 and r.get("samples_per_s")}
    out = []
    for r in rows:
        dp = r.get("dp") or 1
        base = single.get(_base_key(r)) if r.get("scenario") == "train" and dp > 1 else None
        if base and r.get("samples_per_s"):
            r = dict(r, scaling_efficiency=r["samples_per_s"] / (dp * base))
        out.append(r)
    return out
