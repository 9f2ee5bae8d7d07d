"""JSON: the document where the command has one (a comparison), else the records."""

from __future__ import annotations

from bench.render.format import missing
from bench.render.tabular import Tabular

EXPORT = True  # every record, for a machine: no prose on stdout


def write(tab: Tabular, output: str | None = None) -> None:
    import json

    if tab.document is not None:
        print(json.dumps(tab.document, indent=1, default=str))
        return
    columns = tab.columns
    records = [{k: (None if missing(r.get(k)) else r.get(k)) for k in (columns or list(r))} for r in tab.records]
    print(json.dumps(records, indent=1, default=str))
