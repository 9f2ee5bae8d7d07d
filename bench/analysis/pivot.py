"""Pivots: one row per model and shape, one column per target, SDK, instance or run.

The recorded figures of each row are shown (no pooling, no CIs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.analysis.estimate import Metric, parse_metrics
from bench.analysis.samples import USABLE, to_float
from bench.errors import UsageError
from bench.plan.cell import norm
from bench.results.schema import KEY_COLUMNS
from bench.results.store import read_meta, read_rows, run_dirs

_TARGET_COLUMNS = ("target", "compiler", "compiler_args", "n_models", "workers_per_model", "threads_per_worker")


def _by_spec(by: str) -> tuple[str, Any, tuple[str, ...]]:
    """(title, label function, key columns moved from the rows to the columns)."""
    by = by.strip().lower()
    if by == "target":
        return "target", lambda r: f"{r.get('target')}/{r.get('compiler')}", _TARGET_COLUMNS
    if by == "sdk":
        def sdk(r: dict[str, Any]) -> str:
            if r.get("neuronx_cc"):
                return f"neuronx-cc {r['neuronx_cc']}"
            if r.get("torch_neuronx"):
                return f"torch-neuronx {r['torch_neuronx']}"
            return f"torch {r.get('torch') or '?'}"

        return "sdk", sdk, ()
    if by == "instance":
        return "instance", lambda r: str(r.get("instance_type") or r.get("device_name") or r.get("cpu_model")
                                         or r.get("hostname") or "?"), _TARGET_COLUMNS
    if by == "run":
        return "run", lambda r: str(r.get("run_id")), ()
    from bench.results.schema import COLUMNS

    if by in COLUMNS:
        return by, lambda r: f"{by}={norm(r.get(by))}", (by,) if by in KEY_COLUMNS else ()
    raise UsageError(f"unknown --by {by!r} (target, sdk, instance, run, or a results column)")


@dataclass
class Pivot:
    metric: Metric
    by: str
    columns: list[str]
    rows: list[tuple[dict[str, Any], dict[str, tuple[float, str]]]]  # (row key, column -> (value, stability))

    def as_records(self) -> list[dict[str, Any]]:
        out = []
        for key, cells in self.rows:
            for col, (value, note) in cells.items():
                out.append(dict(key, metric=self.metric.name, unit=self.metric.unit, column=col,
                                value=value, stability=note))
        return out


def pivot(run_paths: str | Path | Iterable[str | Path], by: str,
          metrics: str | Sequence[str] | None = None) -> list[Pivot]:
    """One table per metric: rows = cells without the `by` columns, columns = `by` labels.

    The recorded figures of each row are shown (no pooling); when two runs give the same
    row and column, the later one wins. Columns keep the order in which they first appear,
    so the first run given is the baseline of the relative figures.
    """
    title, label_of, moved = _by_spec(by)
    dirs = run_dirs(run_paths)
    records: list[dict[str, Any]] = []
    for d in dirs:
        read_meta(d)
        records.extend(_with_cost(r) for r in read_rows(d) if r.get("status") in USABLE)
    if not records:
        raise UsageError("no usable rows (status ok or unstable) in the given runs")
    row_cols = [c for c in KEY_COLUMNS if c not in moved]
    # A label that maps to several values of the moved columns gets them appended.
    base_labels: dict[str, set] = {}
    for r in records:
        base_labels.setdefault(label_of(r), set()).add(tuple(norm(r.get(c)) for c in moved))
    def column_of(r: dict[str, Any]) -> str:
        base = label_of(r)
        variants = base_labels[base]
        if len(variants) <= 1:
            return base
        extra = [f"{c}={norm(r.get(c))}" for i, c in enumerate(moved)
                 if len({v[i] for v in variants}) > 1 and c not in ("target", "compiler")]
        if title != "target" and any(len({v[i] for v in variants}) > 1 for i, c in enumerate(moved)
                                     if c in ("target", "compiler")):
            extra.insert(0, f"{r.get('target')}/{r.get('compiler')}")
        return " ".join([base, *extra])

    out = []
    for m in parse_metrics(metrics, recorded=True):
        columns: list[str] = []
        table: dict[tuple, tuple[dict[str, Any], dict[str, tuple[float, str]]]] = {}
        for r in records:
            if not m.applies(str(r.get("scenario"))):
                continue
            value = to_float(r.get(m.column))
            if not math.isfinite(value):
                continue
            col = column_of(r)
            if col not in columns:
                columns.append(col)
            k = tuple(norm(r.get(c)) for c in row_cols)
            entry = table.setdefault(k, ({c: norm(r.get(c)) for c in row_cols}, {}))
            note = f"unstable: {r.get('stability') or r.get('error') or ''}".rstrip(": ") \
                if r.get("status") == "unstable" else ""
            entry[1][col] = (value, note)
        if table and m.kind == "recorded" and m.name.startswith("cost"):  # cheapest column first: a ranking
            columns.sort(key=lambda c: _median([cells[c][0] for _, cells in table.values() if c in cells]))
        if table:
            out.append(Pivot(m, title, columns, list(table.values())))
    if not out:
        raise UsageError("nothing to pivot: no row has the requested metrics")
    return out


def _with_cost(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its cost figures, priced from the instance-price table when it has none."""
    from bench.results import prices

    if row.get("cost_per_1m_inf") is not None or row.get("cost_per_1m_tokens") is not None:
        return row
    priced = dict(row, **prices.price_fields(row.get("instance_type")))
    return dict(priced, **prices.cost_fields(priced))


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.inf
