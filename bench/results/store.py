"""The results store: results/<run_id>/{run.json, cells.jsonl, samples/}.

- run.json: the plan and the host environment, written once, atomically.
- cells.jsonl: one JSON row per finished cell, appended and fsync'd, so a killed run
  loses at most the cell in flight.
- samples/<cell_id>.npz: raw per-request latencies (ns) and start times, for later
  statistics (loaded with allow_pickle=False).
- rounds.jsonl, samples/<cell_id>.r<k>.npz: each finished round of a cell with rounds, so a
  killed run loses at most the round in flight.

Every write is a boundary a kill may fall on; `TRNBENCH_KILL_AT=POINT:N` (tests only) kills
this process with SIGKILL the N-th time it passes POINT (`crash_point`), so that the tests
can show that `resume` leaves every planned cell exactly once whichever boundary it was.

`load(paths)` returns one pandas DataFrame for any set of run directories.
Column names follow NeuronPerf's where they mean the same thing.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.results.scaling import add_scaling
from bench.results.schema import COLUMNS, SCHEMA_VERSION

KILL_POINTS = ("round-samples", "mid-round", "round-line", "profile", "row-samples", "mid-row", "row")
_passed: dict[str, int] = {}


def crash_point(point: str) -> None:
    """SIGKILL this process the N-th time it passes `point` when TRNBENCH_KILL_AT=POINT:N
    (fault injection for the resume tests; one dictionary lookup otherwise)."""
    spec = os.environ.get("TRNBENCH_KILL_AT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _passed[point] == int(nth or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        value = float(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class RunStore:
    """One run directory. Rows are appended one line at a time and fsync'd."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, out: str | Path, plan: dict[str, Any], environment: dict[str, Any],
               run_id: str | None = None) -> RunStore:
        run_id = run_id or new_run_id()
        path = Path(out) / run_id
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            raise UsageError(f"results directory already exists: {path}") from None
        except OSError as exc:
            raise UsageError(f"cannot create results directory {path}: {exc.strerror}") from None
        (path / "samples").mkdir()
        meta = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "created": time.time(),
                "plan": plan, "environment": environment}
        _atomic_write(path / "run.json", json.dumps(meta, indent=1, default=str))
        (path / "cells.jsonl").touch()
        return cls(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def append(self, row: dict[str, Any], samples: dict[str, np.ndarray] | None = None) -> None:
        """Write the cell's samples (atomically) and then its row (one fsync'd line)."""
        if samples:
            self._write_samples(f"{row['cell_id']}.npz", samples)
            crash_point("row-samples")
        self._append_line("cells.jsonl", row, "mid-row")
        crash_point("row")

    def append_round(self, row: dict[str, Any], samples: dict[str, np.ndarray] | None) -> None:
        """Keep one finished round of a cell (rounds.jsonl, samples/<cell_id>.r<k>.npz), so a
        killed run loses at most the round in flight; `resume` takes the kept rounds back."""
        if samples:
            self._write_samples(f"{row['cell_id']}.r{int(row['round'])}.npz", samples)
            crash_point("round-samples")
        self._append_line("rounds.jsonl", row, "mid-round")
        crash_point("round-line")

    def rounds_done(self) -> dict[str, list[dict[str, Any]]]:
        """Kept rounds by cell_id, in round order (the last record of a round wins)."""
        by_cell: dict[str, dict[int, dict[str, Any]]] = {}
        for row in read_rows(self.path, "rounds.jsonl"):
            if "cell_id" in row and isinstance(row.get("round"), int):
                by_cell.setdefault(row["cell_id"], {})[row["round"]] = row
        return {c: [rounds[k] for k in sorted(rounds)] for c, rounds in by_cell.items()}

    def round_samples(self, cell_id: str, round_index: int) -> dict[str, np.ndarray] | None:
        path = self.path / "samples" / f"{cell_id}.r{round_index}.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def _write_samples(self, name: str, samples: dict[str, np.ndarray]) -> None:
        target = self.path / "samples" / name
        tmp = target.with_name(f".{name}.tmp-{os.getpid()}.npz")
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in samples.items()})
        os.replace(tmp, target)

    def _append_line(self, name: str, row: dict[str, Any], torn: str) -> None:
        """One fsync'd JSON line, after cutting off a torn tail a killed writer may have left
        (`torn`: the crash point of a kill halfway through the line)."""
        data = (json.dumps({k: _jsonable(v) for k, v in row.items()}, default=str) + "\n").encode("utf-8")
        path = self.path / name
        with open(path, "a+b") as f:
            repair_tail(f)
            if os.environ.get("TRNBENCH_KILL_AT", "").startswith(torn + ":"):
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                crash_point(torn)
                f.seek(-(len(data) // 2), os.SEEK_END)
                f.truncate()
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def lock(self):
        """Hold an exclusive lock on this run directory while cells are being added.

        Two processes resuming the same run would record cells twice; the second is refused.
        """
        import fcntl

        handle = open(self.path / ".lock", "w")  # noqa: SIM115 - held for the run's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UsageError(f"{self.path} is being written by another trnbench process") from None
        for name in ("cells.jsonl", "rounds.jsonl"):  # under the lock: nobody else writes now
            if (self.path / name).exists():
                with open(self.path / name, "r+b") as f:
                    repair_tail(f)
        self._drop_orphan_probes()
        return handle

    def _drop_orphan_probes(self) -> None:
        """Remove the probe rows of a max-rate search that has no result row: a run killed
        between them. `resume` runs that search again and records its probes anew, so keeping
        the old ones would put every probe in the table twice."""
        path = self.path / "cells.jsonl"
        if not path.exists():
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        parsed = [_parse(line) for line in lines]
        finished = {r.get("cell_id") for r in parsed if r is not None and r.get("search_role") != "probe"}
        keep = [line for line, r in zip(lines, parsed)
                if r is None or r.get("search_role") != "probe" or r.get("search_of") in finished]
        if len(keep) < len(lines):
            _atomic_write(path, "".join(keep))

    def rows(self) -> list[dict[str, Any]]:
        return read_rows(self.path)

    def done_ids(self) -> set[str]:
        return {r["cell_id"] for r in self.rows() if "cell_id" in r}


def repair_tail(f) -> None:
    """Cut a file opened for update back to its last newline: a line without one is a row a
    killed writer left half-written (the reader skips it), and appending after it would glue
    the next row to it."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    if size == 0:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        f.seek(0, os.SEEK_END)
        return
    f.seek(0)
    data = f.read()
    keep = data.rfind(b"\n") + 1
    f.seek(keep)
    f.truncate()
    f.seek(0, os.SEEK_END)


def read_meta(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"not a results directory (no run.json): {run_dir}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path}: not a trnbench run file")
    version = meta.get("schema_version")
    if not isinstance(version, int):
        raise UsageError(f"{path}: no schema_version: not a trnbench run file")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{path} was written by a newer trnbench (schema {version}; "
                         f"this one reads up to {SCHEMA_VERSION}): upgrade trnbench")
    return meta


def _parse(line: str) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


def read_rows(run_dir: Path, name: str = "cells.jsonl") -> list[dict[str, Any]]:
    """Rows of cells.jsonl in the plan's order (or rounds.jsonl, as written); a torn last line
    (a killed run) is skipped with a warning."""
    rows = _read_lines(Path(run_dir) / name)
    if name != "cells.jsonl":
        return rows
    return add_scaling(in_plan_order(run_dir, rows))


def plan_positions(run_dir: str | Path) -> dict[str, int]:
    """cell_id -> its position in the run's plan (run.json); empty when run.json has none."""
    try:
        cells = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))["plan"]["cells"]
        return {c["cell_id"]: i for i, c in enumerate(cells) if isinstance(c, dict) and "cell_id" in c}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def in_plan_order(run_dir: str | Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by their cell's position in the plan (a max-rate probe by its search's),
    stable otherwise. Rows are written as cells finish, and with rounds (a cell whose interval
    narrows early stops early) or a cell that fails at once, that is not the plan's order."""
    where = plan_positions(run_dir)
    if not where:
        return rows
    last = len(where)
    return sorted(rows, key=lambda r: where.get(r.get("cell_id"), where.get(r.get("search_of"), last)))


def _read_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            import warnings

            warnings.warn(f"{path}:{n}: skipping a torn or corrupt row", stacklevel=3)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def load_samples(run_dir: str | Path, cell_id: str) -> dict[str, np.ndarray]:
    path = Path(run_dir) / "samples" / f"{cell_id}.npz"
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def run_dirs(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expand paths: a run directory, or a folder whose subfolders are run directories."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "run.json").is_file():
            found.append(p)
        elif p.is_dir():
            subs = sorted(d for d in p.iterdir() if (d / "run.json").is_file())
            if not subs:
                raise UsageError(f"not a results directory (no run.json here or below): {p}")
            found.extend(subs)
        else:
            raise UsageError(f"no such results directory: {p}")
    return found


def load(paths: str | Path | Iterable[str | Path]):
    """A DataFrame of every row of the given runs: documented columns first, units in names."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for run_dir in run_dirs(paths):
        meta = read_meta(run_dir)
        for row in read_rows(run_dir):
            row.setdefault("run_id", meta.get("run_id", run_dir.name))
            row["run_dir"] = str(run_dir)
            rows.append(row)
    df = pd.DataFrame(rows)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:  # added at once: one insert per column fragments the frame (pandas warns)
        df = pd.concat([df, pd.DataFrame({c: pd.Series([None] * len(df), index=df.index, dtype=object)
                                          for c in missing})], axis=1)
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[COLUMNS + extra]
