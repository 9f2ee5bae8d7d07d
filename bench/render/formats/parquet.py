"""Parquet (pyarrow) of the raw records, with the fixed column types of bench.results.table."""

from __future__ import annotations

import sys

from bench.render.tabular import Tabular

EXPORT = True  # every record, for a machine: no prose on stdout


def write(tab: Tabular, output: str | None = None) -> None:
    from bench.results.table import write_parquet

    columns = tab.columns
    records = [{k: r.get(k) for k in columns} if columns else r for r in tab.records]
    path = write_parquet(records, output)
    print(f"parquet: {path} ({len(records)} rows)", file=sys.stderr)
