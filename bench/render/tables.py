"""Result rows as a Tabular: the compact summary a person reads, every column for export."""

from __future__ import annotations

from typing import Any

from bench.render.format import fmt_num, fmt_p50_ci, missing, shape_text
from bench.render.tabular import Tabular

# The compact summary: (header, column or callable)
SUMMARY = [
    ("model", "model"),
    ("target", lambda r: f"{r.get('target')}/{r.get('compiler')}"),
    ("dtype", "dtype"),
    ("scenario", "scenario"),
    ("batch", "batch_size"),
    ("shape", lambda r: shape_text(r)),
    ("status", "status"),
    ("p50 ms", lambda r: fmt_p50_ci(r, "p50")),
    ("p99 ms", lambda r: fmt_num(r.get("latency_ms_p99"))),
    ("samples/s", lambda r: fmt_num(r.get("throughput_avg"), 1)),
    ("n", "samples"),
    ("compile s", lambda r: fmt_num(r.get("compile_s"), 2)),
    ("cosine", lambda r: fmt_num(r.get("cosine"), 6)),
]


def _value_text(value: Any, digits: int | None) -> str:
    """A number with `digits` decimals (3 significant figures by default), or the text as is."""
    if missing(value):
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return fmt_num(value, digits)


def scenario_columns(name: str, target: str | None = None) -> list[tuple[str, Any]]:
    """The summary columns a scenario adds, and those of the verb its target times it with
    (bench.scenarios.base.Scenario.columns, bench.targets.requests.Requests.columns)."""
    from bench import scenarios, targets
    from bench.errors import UsageError

    try:
        scenario = scenarios.get(str(name))
        found = list(scenario.columns)
        if target:
            t = targets.get(str(target))
            found += [c for c in t.requests(t.verb_for(scenario)).columns if c not in found]
    except UsageError:  # a plug-in that is not importable here: its rows still print
        return []
    return [(c.header, c.column if callable(c.column)
             else (lambda r, col=c.column, d=c.digits: _value_text(r.get(col), d))) for c in found]


def summary_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    from bench import scenarios

    order = {name: i for i, name in enumerate(scenarios.names())}

    def kind(r: dict[str, Any]) -> tuple[str, str]:
        return str(r.get("scenario")), str(r.get("target") or "")

    present = sorted(dict.fromkeys(kind(r) for r in rows if r.get("scenario")),
                     key=lambda k: (order.get(k[0], len(order)), k[1]))
    columns = SUMMARY + list({c[0]: c for k in present for c in scenario_columns(*k)}.values())
    headers = [h for h, _ in columns]
    body = []
    for r in rows:
        cells = []
        for _, col in columns:
            v = col(r) if callable(col) else r.get(col)
            cells.append("" if missing(v) else str(v))
        body.append(cells)
    return headers, body


def rows_table(rows: list[dict[str, Any]], columns: list[str] | None = None, title: str | None = None,
               before: list | None = None) -> Tabular:
    """Result rows as a Tabular: the compact summary to read (or `columns`), every column to export."""
    if columns is not None:  # an empty listing still prints its own columns
        headers = columns
        body = [["" if missing(r.get(c)) else str(r.get(c)) for c in columns] for r in rows]
    else:
        headers, body = summary_rows(rows)
    style = {"ok": "", "unstable": "yellow", "inaccurate": "red", "failed": "red", "skipped": "dim"}
    notes = [f"{r.get('model')} {r.get('compiler')} {r.get('scenario')} b{r.get('batch_size')}: "
             f"{r.get('status')}: {r.get('error')}" for r in rows if r.get("error")]
    return Tabular(headers, body, records=[_clean(r, columns) for r in rows], columns=columns, title=title,
                   styles=[style.get(str(r.get("status")), "") for r in rows], before=list(before or []),
                   after=notes)


def print_rows(rows: list[dict[str, Any]], fmt: str = "table", columns: list[str] | None = None,
               title: str | None = None, output: str | None = None, before: list | None = None) -> None:
    """Print rows: the compact summary (table/md) or every column (csv/json/parquet)."""
    from bench.render.formats import emit

    emit(rows_table(rows, columns, title, before), fmt, output)


def _clean(row: dict[str, Any], columns: list[str] | None) -> dict[str, Any]:
    keys = columns or [k for k in row if k not in ("error_detail",)]
    return {k: (None if missing(row.get(k)) else row.get(k)) for k in keys}
