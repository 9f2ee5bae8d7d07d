"""The results as a typed table (pandas, then Parquet through pyarrow) with stable column types.

Types do not depend on the data seen: a key or text column is always a string, a count a
nullable integer, a flag a nullable boolean, and every other documented column a float64
(NaN where the row has none), so two exports of different runs concatenate and a dashboard's
schema does not change when a column happens to be empty. Columns outside the schema (a
plug-in's) are strings, JSON for lists and dicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.metrics import DECLARED
from bench.results.schema import COLUMNS

# the export types, from the declared kinds (bench.results.metrics)
STRING_COLUMNS = {m.name for m in DECLARED if m.kind == "text"}
INT_COLUMNS = {m.name for m in DECLARED if m.kind == "count"}
BOOL_COLUMNS = {m.name for m in DECLARED if m.kind == "flag"}


def dtype_of(column: str) -> str:
    """The pandas dtype a column always has in an export."""
    if column in STRING_COLUMNS:
        return "string"
    if column in INT_COLUMNS:
        return "Int64"
    if column in BOOL_COLUMNS:
        return "boolean"
    return "float64" if column in COLUMNS else "string"


def _cell(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if dtype == "string":
        return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    if dtype == "Int64":
        try:
            f = float(value)
        except (TypeError, ValueError):
            return None
        return int(f) if f == f and f.is_integer() else None
    if dtype == "boolean":
        return bool(value) if isinstance(value, (bool, int)) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def frame(rows: list[dict[str, Any]]):
    """The rows as a DataFrame: every schema column in order (empty ones too), then any others, typed."""
    import pandas as pd

    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    columns = list(COLUMNS) + extra  # every documented column, always: one schema for every export
    data = {c: pd.array([_cell(r.get(c), dtype_of(c)) for r in rows], dtype=dtype_of(c)) for c in columns}
    return pd.DataFrame(data, columns=columns)


def write_parquet(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write the rows as Parquet (atomically); UsageError without pyarrow or a writable path."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'trnbench[parquet]' (or pyarrow)") from None
    out = Path(path)
    if out.suffix.lower() != ".parquet":
        raise UsageError(f"--output for --format parquet must end in .parquet, got {out.name!r}")
    if not out.parent.is_dir():
        raise UsageError(f"no such directory: {out.parent}")
    tmp = out.with_name(f".{out.name}.tmp")
    frame(rows).to_parquet(tmp, engine="pyarrow", index=False)
    tmp.replace(out)
    return out
