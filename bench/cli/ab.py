"""`trnbench ab`: side A's plan and side B (its flags changed by --b, or another Python),
interleaved round by round in one run, compared paired."""

from __future__ import annotations

import argparse
import shlex
import sys

from bench.cli.options import (
    Parser,
    add_plan_args,
    add_run_options,
    add_verdict_options,
    glue_compiler_args,
)
from bench.cli.plans import build_plan
from bench.errors import UsageError


def add(sub) -> None:
    ab = sub.add_parser("ab", help="A/B in one run: side A's plan and side B (its flags changed by --b, or "
                                   "another Python with --b-python), interleaved round by round, compared paired")
    add_plan_args(ab)
    ab.add_argument("--b", metavar="FLAGS", help="run flags that make side B, e.g. --b '--compiler jit' or "
                                                 "--b '-m bert-6l' (none: an A/A calibration)")
    ab.add_argument("--b-python", metavar="PATH", help="side B's workers run under this interpreter (another "
                                                       "environment: SDK 2.x vs 2.y, torch X vs Y)")
    ab.add_argument("-o", "--out", default="results", help="results folder (default results/)")
    add_verdict_options(ab)
    add_run_options(ab, executors=False)
    ab.set_defaults(func=cmd_ab)


def side_b(args: argparse.Namespace) -> argparse.Namespace:
    """Side A's flags with those in --b "..." replaced: any run flag (model, compiler, args, dtype, ...)."""
    try:
        tokens = shlex.split(args.b or "")
    except ValueError as exc:
        raise UsageError(f"--b: cannot split {args.b!r}: {exc}") from None
    only = Parser(prog="--b", add_help=False)
    add_plan_args(only)
    try:
        given, unknown = only.parse_known_args(glue_compiler_args(tokens))
    except UsageError as exc:
        raise UsageError(f"--b: {exc}") from None
    if unknown:
        raise UsageError(f"--b: {unknown[0]} is not a run flag (give the flags of `trnbench run` that change "
                         "side B's cells, e.g. --b '--compiler jit')")
    if getattr(given, "suite", None):
        raise UsageError("--b: --suite cannot change within an A/B run; change the cells' flags instead")
    merged = argparse.Namespace(**vars(args))
    for dest, value in vars(given).items():
        if value is not None and value is not False:
            setattr(merged, dest, value)
    return merged


def cmd_ab(args: argparse.Namespace) -> int:
    """Two sides in one run, interleaved round by round; the paired comparison at the end."""
    from dataclasses import replace

    from bench.analysis.paired import compare_paired
    from bench.execute.ab import run_ab
    from bench.render.compare import render_comparison

    plan_a = build_plan(args)
    plan_b = build_plan(side_b(args))
    plan_b = replace(plan_b, name=f"{plan_b.name} (B)")
    root, dir_a, dir_b = run_ab(plan_a, plan_b, args.out, rounds=args.rounds, python_b=args.b_python,
                                b_flags=args.b or "", cache_dir=args.cache_dir, instance=args.instance_type,
                                progress=not args.no_progress, worker_memory_gb=args.worker_memory_gb)
    comparison, calibration = compare_paired(dir_a, dir_b, metrics=args.metric, threshold=args.threshold,
                                             alpha=args.alpha)
    render_comparison(comparison, args.format)
    if not args.b and not args.b_python:  # A/A: what this machine can resolve
        for line in calibration.lines():
            print(line)
    print(f"results: {root} (sides {dir_a.name}/ and {dir_b.name}/)", file=sys.stderr)
    if args.fail_on_regression and comparison.regressions:
        print(f"regression: {comparison.summary()}", file=sys.stderr)
        return 1
    return 0
