"""Output formats, registered once: each is one module with `write(tab, output=None)` taking a
bench.render.tabular.Tabular. Commands choose by name (`--format`), nowhere else."""

from __future__ import annotations

from importlib import import_module

from bench.errors import UsageError
from bench.render.tabular import Tabular

# name -> module; `writes_file`: the format needs --output (a binary file, not stdout)
FORMATS = {"table": "table", "csv": "csv", "md": "md", "json": "json", "parquet": "parquet"}
WRITES_FILE = ("parquet",)


def is_export(fmt: str) -> bool:
    """Whether `fmt` is for a machine (every record, nothing but them on stdout) rather than a person."""
    if fmt not in FORMATS:
        return False
    return bool(import_module(f"bench.render.formats.{FORMATS[fmt]}").EXPORT)


def emit(tab: Tabular, fmt: str = "table", output: str | None = None) -> None:
    """Write `tab` in format `fmt` (to stdout, or to `output` where the format writes a file)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt in WRITES_FILE and not output:
        raise UsageError(f"--format {fmt} writes a file: give --output FILE.{fmt}")
    import_module(f"bench.render.formats.{FORMATS[fmt]}").write(tab, output)
