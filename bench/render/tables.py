"""Render results as a compact terminal table, CSV, Markdown or JSON."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

FORMATS = ("table", "csv", "md", "json")
WRAP_AFTER = 40  # a text column wider than this may wrap in the terminal table

# The compact summary: (header, column or callable)
SUMMARY = [
    ("model", "model"),
    ("target", lambda r: f"{r.get('target')}/{r.get('compiler')}"),
    ("dtype", "dtype"),
    ("scenario", "scenario"),
    ("batch", "batch_size"),
    ("shape", lambda r: _shape(r)),
    ("status", "status"),
    ("p50 ms", lambda r: _ci(r, "p50")),
    ("p99 ms", lambda r: _num(r.get("latency_ms_p99"))),
    ("samples/s", lambda r: _num(r.get("throughput_avg"), 1)),
    ("n", "samples"),
    ("compile s", lambda r: _num(r.get("compile_s"), 2)),
    ("cosine", lambda r: _num(r.get("cosine"), 6)),
]
# Extra columns shown only when the rows include that scenario.
SCENARIO_COLUMNS = {
    "server": [
        ("rate q/s", lambda r: _num(r.get("offered_rate_qps") or r.get("rate_qps"), 1)),
        ("validity", "validity"),
        ("max rate q/s", lambda r: _num(r.get("max_rate_qps"), 1)),
    ],
    "generate": [
        ("in/out", lambda r: "" if _missing(r.get("output_len")) else f"{r.get('input_len') or r.get('seq_len')}/"
                             f"{int(r['output_len'])}"),
        ("TTFT ms", lambda r: _num(r.get("ttft_ms_p50"))),
        ("TPOT ms", lambda r: _num(r.get("tpot_ms_p50"))),
        ("tokens/s", lambda r: _num(r.get("output_tokens_per_s"), 1)),
    ],
}


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _num(v: Any, digits: int | None = None) -> str:
    if _missing(v):
        return ""
    v = float(v)
    if digits is None:  # 3 significant figures, as a latency wants
        digits = max(0, 2 - int(math.floor(math.log10(abs(v))))) if v else 0
    return f"{v:.{digits}f}"


def _ci(row: dict[str, Any], p: str) -> str:
    mid = row.get(f"latency_ms_{p}")
    if _missing(mid):
        return ""
    lo, hi = row.get(f"latency_ms_{p}_ci_low"), row.get(f"latency_ms_{p}_ci_high")
    if _missing(lo) or _missing(hi) or not mid:
        return _num(mid)
    half = max(mid - lo, hi - mid) / mid
    return f"{_num(mid)} ±{half:.1%}"


def _shape(row: dict[str, Any]) -> str:
    if not _missing(row.get("seq_len")):
        return f"seq {int(row['seq_len'])}"
    if not _missing(row.get("image_size")):
        return f"{int(row['image_size'])}px"
    return ""


def summary_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    present = {r.get("scenario") for r in rows}
    columns = SUMMARY + [c for name, cols in SCENARIO_COLUMNS.items() if name in present for c in cols]
    headers = [h for h, _ in columns]
    body = []
    for r in rows:
        cells = []
        for _, col in columns:
            v = col(r) if callable(col) else r.get(col)
            cells.append("" if _missing(v) else str(v))
        body.append(cells)
    return headers, body


def print_rows(rows: list[dict[str, Any]], fmt: str = "table", columns: list[str] | None = None,
               title: str | None = None) -> None:
    """Print rows to stdout: the compact summary (table/md) or every column (csv/json)."""
    if fmt == "json":
        print(json.dumps([_clean(r, columns) for r in rows], indent=1, default=str))
        return
    if fmt == "csv":
        import pandas as pd

        df = pd.DataFrame([_clean(r, columns) for r in rows], columns=columns)
        df.to_csv(sys.stdout, index=False)
        return
    if columns is not None:  # an empty listing still prints its own columns
        headers = columns
        body = [["" if _missing(r.get(c)) else str(r.get(c)) for c in columns] for r in rows]
    else:
        headers, body = summary_rows(rows)
    if fmt == "md":
        print(markdown(headers, body))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold", show_lines=False)
    for i, h in enumerate(headers):
        widest = max([len(h)] + [len(b[i]) for b in body])
        # short columns never wrap (numbers stay whole); long prose columns fold
        table.add_column(h, justify="right" if _numeric([b[i] for b in body]) else "left",
                         no_wrap=widest <= WRAP_AFTER, min_width=min(widest, WRAP_AFTER), overflow="fold")
    style = {"ok": "", "unstable": "yellow", "inaccurate": "red", "failed": "red", "skipped": "dim"}
    for r, cells in zip(rows, body):
        table.add_row(*cells, style=style.get(str(r.get("status")), ""))
    console = Console()
    if not console.is_terminal:  # piped or captured: wide enough that numbers are never cut
        natural = sum(max([len(h)] + [len(b[i]) for b in body]) + 3 for i, h in enumerate(headers))
        console = Console(width=max(120, min(natural, 250)))
    console.print(table)
    notes = [f"{r.get('model')} {r.get('compiler')} {r.get('scenario')} b{r.get('batch_size')}: "
             f"{r.get('status')}: {r.get('error')}" for r in rows if r.get("error")]
    for note in notes:
        print(note)


def _numeric(values: list[str]) -> bool:
    def is_num(v: str) -> bool:
        try:
            float(v.split(" ")[0].rstrip("M"))
            return True
        except ValueError:
            return False

    present = [v for v in values if v]
    return bool(present) and all(is_num(v) for v in present)


def markdown(headers: list[str], body: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, headers)) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in cells) + " |" for cells in body]
    return "\n".join(lines)


def _clean(row: dict[str, Any], columns: list[str] | None) -> dict[str, Any]:
    keys = columns or [k for k in row if k not in ("error_detail",)]
    return {k: (None if _missing(row.get(k)) else row.get(k)) for k in keys}
