"""`trnbench compile`: a plan's artifacts into the cache without measuring (e.g. on a CPU host for inf2)."""

from __future__ import annotations

import argparse

from bench.cli.options import add_format, add_plan_args
from bench.cli.plans import build_plan

COLUMNS = ["model", "target", "compiler", "dtype", "batch_size", "seq_len", "image_size", "compiler_args", "status",
           "compile_s", "error"]


def add(sub) -> None:
    comp = sub.add_parser("compile", help="compile a plan's artifacts into the cache without measuring "
                                          "(neuron: on a host without devices too, with --target)")
    add_plan_args(comp)
    comp.add_argument("--cache-dir", help="compiled-artifact cache (default ~/.cache/trnbench/artifacts)")
    add_format(comp)
    comp.set_defaults(func=cmd_compile)


def cmd_compile(args: argparse.Namespace) -> int:
    from bench.execute.precompile import compile_plan
    from bench.render.tables import print_rows

    rows = compile_plan(build_plan(args), args.cache_dir)
    print_rows(rows, args.format, columns=COLUMNS)
    return 1 if any(r["status"] == "failed" for r in rows) else 0
