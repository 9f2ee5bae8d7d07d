"""The one value every output format consumes: a table of display cells and raw records,
with the lines a person reads around it (bench.render.formats writes it as table, md, csv,
json or parquet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tabular:
    """What a command prints. `headers`/`cells`: the table a person reads (table, md);
    `records`: the raw values, one dict per row, `columns` their order (csv, json, parquet);
    `before`/`after`: lines and bulleted lists around the table (table, md only);
    `document`: what json prints instead of the records (a comparison's whole result)."""

    headers: list[str]
    cells: list[list[str]]
    records: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] | None = None
    title: str | None = None
    styles: list[str] | None = None  # a rich style per row (table)
    before: list[str | Bullets] = field(default_factory=list)
    after: list[str | Bullets] = field(default_factory=list)
    document: Any = None
    wrap: tuple[str, ...] = ()  # headers whose text may fold (table); others never wrap
    show_empty: bool = True  # an empty table still prints its headers

    def record_columns(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)


@dataclass
class Bullets:
    """A titled list printed around a table ('only in A (2):' and its items); nothing when empty."""

    title: str
    items: list[str]


def print_lines(items: list[str | Bullets], bullet: str = "  ", gap: bool = False) -> None:
    """The lines around a table: text as it is, a Bullets list as its title and one item a line
    (`bullet` before each; `gap`: a blank line after the list, as Markdown needs)."""
    for item in items:
        if isinstance(item, Bullets):
            if item.items:
                print(f"{item.title}:")
                for x in item.items:
                    print(f"{bullet}{x}")
                if gap:
                    print()
        else:
            print(item)
