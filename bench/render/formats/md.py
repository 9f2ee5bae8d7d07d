"""Markdown: a pipe table, with the lines around it (lists as '- item')."""

from __future__ import annotations

from bench.render.tabular import Tabular, print_lines

EXPORT = False  # for a person: the lines around the table too


def markdown(headers: list[str], body: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| " + " | ".join(map(esc, headers)) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in cells) + " |" for cells in body]
    return "\n".join(out)


def write(tab: Tabular, output: str | None = None) -> None:
    print_lines(tab.before, bullet="  - ", gap=True)
    if tab.before:
        print()
    if tab.title:
        print(f"**{tab.title}**\n")
    if tab.cells or tab.show_empty:
        print(markdown(tab.headers, tab.cells))
    if tab.after:
        print()
    print_lines(tab.after, bullet="  - ", gap=True)
