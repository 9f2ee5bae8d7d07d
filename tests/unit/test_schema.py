"""The row's contract: every column declared once, a schema history, and a run written under
schema 1 (before this one: tests/data/runs/v1-..., made by trnbench at 64a3e78) that still
loads, shows, compares, reports and plans."""

from __future__ import annotations

import json
import shutil

from bench import load
from bench.cli import main
from bench.plan.cell import Cell
from bench.plan.grid import Plan
from bench.results.metrics import DECLARED
from bench.results.schema import (
    COLUMNS,
    HISTORY,
    KEY_COLUMNS,
    SCHEMA_VERSION,
    markdown,
    upgrade_plan_entry,
)
from tests.support.paths import DATA, ROOT

V1 = DATA / "runs" / "v1-20261206-140719-99c9"


def test_every_column_is_declared_once_and_the_key_is_the_cells():
    names = [m.name for m in DECLARED]
    assert len(names) == len(set(names)) and names == COLUMNS
    assert [m.name for m in DECLARED if m.key] == KEY_COLUMNS == Cell.key_columns()
    assert all(m.doc and m.kind and m.pool for m in DECLARED)
    assert SCHEMA_VERSION == max(HISTORY) == 4


def test_the_docs_page_is_generated_from_the_declarations():
    """docs/reference/results.md is `python -m bench.results.schema`'s output, kept in step."""
    page = (ROOT / "docs" / "reference" / "results.md").read_text()
    assert page == markdown()


def test_a_schema_1_run_still_loads_shows_compares_and_reports(tmp_path, capsys):
    run = tmp_path / V1.name
    shutil.copytree(V1, run)
    assert json.loads((run / "run.json").read_text())["schema_version"] == 1
    df = load(run)
    assert len(df) == 2 and list(df.columns[:len(COLUMNS)]) == COLUMNS
    assert set(df["status"]) <= {"ok", "unstable"} and df["control_model"].isna().all()  # a v2 column, empty
    assert main(["show", str(run), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["compare", str(run), str(run), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]
    assert main(["report", str(run), "-o", str(tmp_path / "r.html")]) == 0
    assert "tiny-bert" in (tmp_path / "r.html").read_text()
    plan = Plan.from_dict(json.loads((run / "run.json").read_text())["plan"])  # resume reads it back
    assert {c.cell_id for c in plan.cells} == set(df["cell_id"])


def test_a_schema_1_plan_entry_of_an_endpoint_cell_is_read_as_its_options():
    entry = {"model": "m", "target": "endpoint", "endpoint": {"url": "http://127.0.0.1:8000/v1"}}
    assert upgrade_plan_entry(entry) == {"model": "m", "target": "endpoint",
                                         "options": {"url": "http://127.0.0.1:8000/v1"}}
