"""trnbench command line: one module per command, each owning its parser and its handler; the
option groups they share are defined once (bench.cli.options).

Only argparse is imported at start-up; torch, transformers, pandas and rich are imported by
the commands that need them, so `trnbench --help` is instant.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module

from bench.cli.options import Parser, glue_compiler_args
from bench.errors import UsageError

EXIT_USAGE = 2
# the commands, in the order `--help` lists them: module name under bench.cli
COMMANDS = ("run", "ab", "compile", "show", "listing", "env", "compare", "report", "reference")


def make_parser() -> Parser:
    parser = Parser(prog="trnbench",
                    description="Benchmark models on AWS Neuron (trn1/trn2/inf2), CUDA and CPU, "
                                "and record comparable results.")
    from bench.version import __version__

    parser.add_argument("--version", action="version", version=f"trnbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        import_module(f"bench.cli.{name}").add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    try:
        args = parser.parse_args(glue_compiler_args(list(sys.argv[1:] if argv is None else argv)))
        if not getattr(args, "command", None):
            parser.print_help()
            return EXIT_USAGE
        return args.func(args)
    except UsageError as exc:
        print(f"trnbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("trnbench: interrupted (rows recorded so far are kept; finish with --resume RUN_DIR)",
              file=sys.stderr)
        return 130
