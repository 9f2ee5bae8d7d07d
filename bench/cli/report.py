"""`trnbench report`: an HTML (self-contained) or Markdown report of one or more runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import UsageError


def add(sub) -> None:
    rep = sub.add_parser("report", help="write an HTML or Markdown report with tables and plots")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run directories or folders of runs")
    rep.add_argument("-o", "--out", default="report.html", help="report.html (self-contained) or report.md")
    rep.add_argument("--title", help="report title")
    rep.add_argument("--by", choices=("time", "sdk"), default="time",
                     help="three or more runs: their history against run time or SDK version (default time)")
    rep.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from bench.render.report import build, write

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm", ".md", ".markdown"):
        raise UsageError(f"report file must end in .html or .md, got {out.name!r}")
    report = build(args.runs, title=args.title, by=args.by or "time")
    path = write(report, out)
    print(f"report: {path} ({len(report.rows)} cells, {len(report.plots)} plots)", file=sys.stderr)
    return 0
