"""`trnbench reference import FILE.csv`: one of the Neuron docs' published data files, read as
it is, written as our reference table's rows (compare --reference reads them)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.options import Parser
from bench.errors import UsageError


def add(sub) -> None:
    refp = sub.add_parser("reference", help="published figures: import one of the Neuron docs' data files")
    refsub = refp.add_subparsers(dest="action", required=True, parser_class=Parser)
    imp = refsub.add_parser("import", help="read a published data file (e.g. latency_data_encoder.csv) as it is "
                            "and write rows in our reference layout (compare --reference reads them)")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("-o", "--out", required=True, help="the reference CSV to write, e.g. results/reference/NAME.csv")
    imp.add_argument("--data-file", help="the file's path in aws-neuron-sdk, recorded in each row")
    imp.add_argument("--source-url", help="the page that shows the figures, recorded in each row")
    imp.add_argument("--force", action="store_true", help="replace --out if it exists")
    imp.set_defaults(func=cmd_reference)


def cmd_reference(args: argparse.Namespace) -> int:
    from bench.analysis.published import import_published, write_reference

    rows = import_published(args.file, data_file=args.data_file, source_url=args.source_url)
    if not rows:
        reasons = "; ".join(sorted({s["reason"] for s in rows.skipped}))[:300]
        raise UsageError(f"{args.file}: no row maps to a model card ({reasons or 'the file has no rows'})")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists: give another -o, or --force to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"no such directory: {out.parent}")
    write_reference(rows, out)
    print(f"reference: {out} ({len(rows)} rows; {len(rows.skipped)} skipped)", file=sys.stderr)
    for s in rows.skipped:
        print(f"  skipped line {s['line']} ({s['model']}): {s['reason']}", file=sys.stderr)
    return 0
