"""`trnbench show`: the rows of one or more runs, in any output format."""

from __future__ import annotations

import argparse

from bench.cli.options import add_format
from bench.cli.run import machine_line


def add(sub) -> None:
    show = sub.add_parser("show", help="print the results of one or more runs")
    show.add_argument("runs", nargs="+", metavar="RUN_DIR", help="a run directory or a folder of runs")
    add_format(show, ("parquet",), help="parquet: typed columns (docs: results) to --output FILE.parquet")
    show.add_argument("--output", metavar="FILE", help="with --format parquet: the file to write")
    show.add_argument("--columns", help="comma-separated columns to show")
    show.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    from bench.render.tables import print_rows
    from bench.results.store import read_meta, read_rows, run_dirs

    dirs = run_dirs(args.runs)
    rows = []
    for d in dirs:
        read_meta(d)
        rows.extend(read_rows(d))
    before = machine_line(dirs[0], rows, args.format) if len(dirs) == 1 else []
    print_rows(rows, args.format, columns=args.columns.split(",") if args.columns else None, output=args.output,
               before=before)
    return 0
