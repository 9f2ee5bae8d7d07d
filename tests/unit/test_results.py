"""The results store: append-only rows, torn lines, schema versions, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import load
from bench.errors import UsageError
from bench.results.schema import SCHEMA_VERSION
from bench.results.store import RunStore, load_samples, read_rows


def _store(tmp_path, n=3):
    store = RunStore.create(tmp_path, {"name": "t", "cells": []}, {"python": "3"})
    for i in range(n):
        store.append({"cell_id": f"c{i}", "model": "m", "status": "ok", "latency_ms_p50": float(i)},
                     {"latency_ns": np.arange(5, dtype=np.int64) + i})
    return store


def test_rows_and_samples_round_trip(tmp_path):
    store = _store(tmp_path)
    df = load(store.path)
    assert list(df["cell_id"]) == ["c0", "c1", "c2"]
    assert list(load_samples(store.path, "c2")["latency_ns"]) == [2, 3, 4, 5, 6]
    assert store.done_ids() == {"c0", "c1", "c2"}


def test_rows_written_as_cells_finish_are_read_in_the_plans_order(tmp_path):
    """Cells finish out of the plan's order (one whose interval narrows after fewer rounds, one
    that fails at once): every reader gets the plan's order, a max-rate probe beside its search."""
    plan = {"name": "t", "cells": [{"cell_id": f"c{i}", "model": "m"} for i in range(3)]}
    store = RunStore.create(tmp_path, plan, {"python": "3"})
    for row in ({"cell_id": "c2"}, {"cell_id": "p1", "search_role": "probe", "search_of": "c0"},
                {"cell_id": "c0", "search_role": "result"}, {"cell_id": "x", "note": "not planned"},
                {"cell_id": "c1"}):
        store.append(dict(row, status="ok"))
    assert [r["cell_id"] for r in read_rows(store.path)] == ["p1", "c0", "c1", "c2", "x"]
    assert list(load(store.path)["cell_id"]) == ["p1", "c0", "c1", "c2", "x"]
    assert [r["cell_id"] for r in read_rows(store.path, "rounds.jsonl")] == []  # rounds: as written


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path):
    store = _store(tmp_path)
    with open(store.path / "cells.jsonl", "a") as f:
        f.write('{"cell_id": "c3", "mod')
    with pytest.warns(UserWarning, match="torn"):
        rows = read_rows(store.path)
    assert [r["cell_id"] for r in rows] == ["c0", "c1", "c2"]


def test_newer_schema_is_refused_older_is_read(tmp_path, capsys):
    store = _store(tmp_path)
    meta = json.loads((store.path / "run.json").read_text())
    meta["schema_version"] = SCHEMA_VERSION + 1
    (store.path / "run.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="newer trnbench"):
        load(store.path)
    # an older run: schema 0, rows written before the newer columns existed (no rounds, no host state)
    old = RunStore.create(tmp_path / "old", {"name": "t", "cells": []}, {"python": "3"})
    meta = json.loads((old.path / "run.json").read_text())
    meta["schema_version"] = SCHEMA_VERSION - 1
    (old.path / "run.json").write_text(json.dumps(meta))
    (old.path / "cells.jsonl").write_text(json.dumps({"cell_id": "o1", "model": "m", "status": "ok",
                                                      "latency_ms_p50": 2.5, "schema_version": 0}) + "\n")
    df = load(old.path)
    assert list(df["cell_id"]) == ["o1"] and df["latency_ms_p50"].iloc[0] == 2.5
    assert "foreign_cpu_frac" in df.columns and df["foreign_cpu_frac"].isna().all()  # newer columns: empty
    from bench.cli import main

    assert main(["show", str(old.path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["latency_ms_p50"] == 2.5


def test_not_a_results_directory(tmp_path):
    with pytest.raises(UsageError, match="not a results directory"):
        load(tmp_path)
    with pytest.raises(UsageError, match="no such results directory"):
        load(tmp_path / "missing")
