"""The progress bar of a run (rich, on stderr so that stdout stays machine-readable), or none."""

from __future__ import annotations

from typing import Any

from bench.plan.cell import Cell


class NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def show(self, cell: Cell, round_index: int = 0, rounds: int = 1, what: str = "") -> None:
        pass

    def advance(self, row: dict[str, Any], quiet: bool = False) -> None:
        pass

    def grow(self, n: int) -> None:
        """`n` more rounds than planned (a wide interval's extra rounds)."""


class RichProgress(NoProgress):
    """A progress bar with an ETA, on stderr so that stdout stays machine-readable."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task("starting", total=total)
        self.failed = 0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def show(self, cell: Cell, round_index: int = 0, rounds: int = 1, what: str = "") -> None:
        """The cell at hand: its round, or `what` else is done to it (its profiled pass)."""
        prefix = f"{what}: " if what else (f"round {round_index + 1}/{rounds}: " if rounds > 1 else "")
        self.progress.update(self.task, description=(prefix + cell.label)[:60].ljust(60))

    def advance(self, row: dict[str, Any], quiet: bool = False) -> None:
        """One round (or cell) done; `quiet`: an intermediate round, not reported in words."""
        if not quiet and row.get("status") not in ("ok", "unstable"):
            self.failed += 1
            self.progress.console.print(f"[yellow]{row['status']}[/]: {row.get('model')} "
                                        f"{row.get('compiler')} {row.get('scenario')} b{row.get('batch_size')}: "
                                        f"{row.get('error', '')}")
        self.progress.advance(self.task)

    def grow(self, n: int) -> None:
        self.progress.update(self.task, total=self.progress.tasks[0].total + n)


def progress_bar(enabled: bool, total: int):
    return RichProgress(total) if enabled and total else NoProgress()
