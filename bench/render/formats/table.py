"""A terminal table (rich), with the lines around it; on a pipe, wide enough that numbers are never cut."""

from __future__ import annotations

from bench.render.format import is_numeric
from bench.render.tabular import Tabular, print_lines

WRAP_AFTER = 40  # a text column wider than this may wrap in the terminal table


EXPORT = False  # for a person: the lines around the table too


def write(tab: Tabular, output: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    print_lines(tab.before)
    if tab.cells or tab.show_empty:
        table = Table(title=tab.title, header_style="bold", show_lines=False)
        for i, h in enumerate(tab.headers):
            widest = max([len(h)] + [len(b[i]) for b in tab.cells])
            # short columns never wrap (numbers stay whole); long prose columns fold (or those named)
            folds = h in tab.wrap if tab.wrap else widest > WRAP_AFTER
            table.add_column(h, justify="right" if is_numeric([b[i] for b in tab.cells]) else "left",
                             no_wrap=not folds, min_width=min(widest, WRAP_AFTER) if folds else None,
                             overflow="fold")
        for i, cells in enumerate(tab.cells):
            table.add_row(*cells, style=(tab.styles[i] if tab.styles else "") or "")
        console = Console()
        if not console.is_terminal:  # piped or captured: wide enough that numbers are never cut
            natural = sum(max([len(h)] + [len(b[i]) for b in tab.cells]) + 3 for i, h in enumerate(tab.headers))
            console = Console(width=400 if tab.wrap else max(120, min(natural, 250)))
        console.print(table)
    print_lines(tab.after)
