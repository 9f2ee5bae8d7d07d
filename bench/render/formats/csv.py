"""CSV of the raw records (every column; the lines around the table are left out)."""

from __future__ import annotations

import sys

from bench.render.format import missing
from bench.render.tabular import Tabular

EXPORT = True  # every record, for a machine: no prose on stdout


def write(tab: Tabular, output: str | None = None) -> None:
    import csv

    columns = tab.record_columns() or tab.headers
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in tab.records:
        writer.writerow({k: ("" if missing(r.get(k)) else r.get(k)) for k in columns})
