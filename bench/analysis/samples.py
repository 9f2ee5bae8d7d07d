"""One side of a comparison: the rows of some runs, pooled by cell key, and their raw samples.

A side may be several runs: rows with the same key are pooled (their raw samples
concatenated). `Samples` loads a pooled cell's `samples/<cell_id>.npz` once and gives the
sorted latencies, the per-run series in time order, and the batch-means throughput rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.plan.cell import cell_label, norm
from bench.results.schema import KEY_COLUMNS
from bench.results.store import load_samples, read_meta, read_rows, run_dirs

MIN_INTERVALS = 5  # throughput: fewer batch-means intervals than this gives no CI
MAX_INTERVALS = 20
PER_INTERVAL = 8  # throughput: completions per interval at least this (when K < MAX)
USABLE = ("ok", "unstable")  # statuses whose figures can be compared
BROKEN = ("failed", "inaccurate")


@dataclass
class PooledCell:
    """One cell of one side: the rows (one per run) that share a key."""

    key: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)  # each with "_run_dir"

    @property
    def usable(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("status") in USABLE]

    @property
    def first(self) -> dict[str, Any]:
        return (self.usable or self.rows)[0]

    def values(self, column: str) -> list[Any]:
        out = []
        for r in self.rows:
            v = norm(r.get(column))
            if v not in out:
                out.append(v)
        return out

    def stability(self) -> str:
        """'unstable: IQR is 25% of the median' when any pooled row is unstable, else ''."""
        notes = [str(r.get("stability") or r.get("error") or "") for r in self.usable if r.get("status") == "unstable"]
        notes = [n for n in dict.fromkeys(notes) if n]
        return ("unstable: " + "; ".join(notes)) if notes else ("unstable" if any(
            r.get("status") == "unstable" for r in self.usable) else "")


@dataclass
class Side:
    """One side of a comparison: a set of runs, their cells indexed by key."""

    label: str
    dirs: list[Path]
    metas: list[dict[str, Any]]
    cells: dict[tuple, PooledCell]

    def describe(self) -> str:
        ids = [m.get("run_id", d.name) for m, d in zip(self.metas, self.dirs)]
        env = self.metas[0].get("environment", {}) if self.metas else {}
        commit = str(env.get("git_commit") or "")[:9]
        bits = [", ".join(ids) if len(ids) <= 3 else f"{len(ids)} runs"]
        if commit:
            bits.append(f"commit {commit}{'+dirty' if env.get('git_dirty') else ''}")
        if env.get("hostname"):
            bits.append(f"host {env['hostname']}")
        return f"{self.label}: " + ", ".join(bits)


def load_side(paths: str | Path | Iterable[str | Path], label: str = "A",
              key_columns: Sequence[str] = KEY_COLUMNS) -> Side:
    """Read the runs under `paths` and index their rows by cell key (pooling repeats)."""
    dirs = run_dirs(paths)
    metas = [read_meta(d) for d in dirs]
    cells: dict[tuple, PooledCell] = {}
    full_keys: dict[tuple, set] = {}
    for d in dirs:
        for row in read_rows(d):
            row = dict(row, _run_dir=str(d))
            key = tuple(norm(row.get(c)) for c in key_columns)
            cell = cells.setdefault(key, PooledCell({c: norm(row.get(c)) for c in key_columns}))
            cell.rows.append(row)
            full_keys.setdefault(key, set()).add(tuple(norm(row.get(c)) for c in KEY_COLUMNS))
    for key, fulls in full_keys.items():
        if len(fulls) > 1:
            dropped = [c for c in KEY_COLUMNS if c not in key_columns]
            raise UsageError(f"{label}: leaving {', '.join(dropped)} out of the key makes different cells "
                             f"collide ({cell_label(cells[key].key)}): compare fewer cells or ignore fewer columns")
    return Side(label, dirs, metas, cells)


class Samples:
    """Raw samples of a pooled cell, loaded once and cached."""

    def __init__(self, cell: PooledCell):
        self.cell = cell
        self._sorted: dict[str, np.ndarray | None] = {}
        self._parts: dict[str, list[np.ndarray]] = {}
        self._loaded: list[tuple[dict[str, Any], dict[str, np.ndarray]]] | None = None
        self._rates: np.ndarray | None | bool = False

    def _load(self) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
        if self._loaded is None:
            out = []
            for r in self.cell.usable:
                try:
                    out.append((r, load_samples(r["_run_dir"], r["cell_id"])))
                except (OSError, KeyError, ValueError):
                    out = []
                    break
            self._loaded = out
        return self._loaded

    def latency_ms(self, key: str = "latency_ns") -> np.ndarray | None:
        """Sorted pooled values of a per-request sample array, in ms; None without raw samples."""
        if key not in self._sorted:
            parts = self.latency_parts(key)
            self._sorted[key] = np.sort(np.concatenate(parts)) if parts else None
        return self._sorted[key]

    def latency_parts(self, key: str = "latency_ns") -> list[np.ndarray]:
        """Per-request values in ms in the order the requests started, one array per group: a
        pooled run, or each round of a run measured in rounds (its `round` array)."""
        if key not in self._parts:
            self._parts[key] = [g for _, g in self.latency_groups(key)]
        return self._parts[key]

    def latency_groups(self, key: str = "latency_ns") -> list[tuple[tuple[str, int], np.ndarray]]:
        """`latency_parts` with each group's label: (run directory, round index; -1 without
        rounds). Cells of one run measured in the same round index were measured in the same
        pass over the plan, close in time, which is what `--control` pairs."""
        out = []
        for row, s in self._load():
            if key not in s or not len(s[key]):
                continue
            values = s[key].astype(np.float64) / 1e6
            rounds = s.get("round")
            if rounds is None or len(rounds) != len(values):
                out.append(((row["_run_dir"], -1), values))
                continue
            for r in np.unique(rounds):
                out.append(((row["_run_dir"], int(r)), values[rounds == r]))
        return out

    def rate_groups(self) -> list[np.ndarray]:
        """Batch-means throughput per group (run, or round of a run): samples/s in each of K
        equal intervals of that group's own steady window."""
        return [g for _, g in self.labelled_rate_groups()]

    def labelled_rate_groups(self) -> list[tuple[tuple[str, int], np.ndarray]]:
        """`rate_groups` with each group's label, as in `latency_groups`."""
        from bench.stats.summary import steady_window

        out = []
        for row, s in self._load():
            if "start_ns" not in s or "latency_ns" not in s or not len(s["start_ns"]):
                continue
            start_all = s["start_ns"].astype(np.int64)
            end_all = start_all + s["latency_ns"].astype(np.int64)
            rounds = s.get("round")
            picks = ([(int(r), rounds == r) for r in np.unique(rounds)]
                     if rounds is not None and len(rounds) == len(start_all)
                     else [(-1, np.ones(len(start_all), dtype=bool))])
            for label, pick in picks:
                start, end = start_all[pick], end_all[pick]
                trim = float(row.get("trim_s") or 0.0)
                t0, t1 = steady_window(start, end, trim)
                inside = end[(end >= t0) & (end < t1)]
                k = min(MAX_INTERVALS, inside.size // PER_INTERVAL)
                if k < MIN_INTERVALS or t1 <= t0:
                    continue
                counts, _ = np.histogram(inside, bins=k, range=(t0, t1))
                width_s = (t1 - t0) / 1e9 / k
                out.append(((row["_run_dir"], label), counts * _per_request(row) / width_s))
        return out

    def rates(self) -> np.ndarray | None:
        """Batch-means throughput: every group's interval rates together."""
        if self._rates is False:
            groups = self.rate_groups()
            self._rates = np.concatenate(groups) if groups else None
        return self._rates  # type: ignore[return-value]


def _per_request(row: dict[str, Any]) -> float:
    """Samples one recorded request stands for: its batch, or a training step's global batch
    (batch x grad_accum x dp: rank 0's steps are every rank's)."""
    out = 1.0
    for col in ("batch_size", "grad_accum", "dp"):
        v = to_float(row.get(col))
        out *= v if v == v and v > 0 else 1.0
    return out


def to_float(v: Any) -> float:
    """A results value as a float (NaN when missing or not a number)."""
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan
