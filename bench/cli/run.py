"""`trnbench run` (a suite or a grid of cells) and `trnbench resume` (what a killed run left)."""

from __future__ import annotations

import argparse
import sys

from bench.cli.options import add_plan_args, add_run_options
from bench.cli.plans import build_plan, plan_to_resume
from bench.errors import UsageError

DRY_RUN_ROWS = 100  # a dry run's table shows this many cells
DRY_RUN_COLUMNS = ["model", "target", "compiler", "dtype", "scenario", "batch_size", "seq_len", "image_size",
                   "n_models", "workers_per_model", "threads_per_worker"]


def add(sub) -> None:
    run = sub.add_parser("run", help="run a suite or a grid of cells and record the results")
    add_plan_args(run)
    run.add_argument("-o", "--out", default="results", help="results folder (default results/)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="finish the cells RUN_DIR did not record (its own plan unless one is given)")
    run.add_argument("--dry-run", action="store_true", help="print the planned cells and exit")
    run.add_argument("--control", metavar="MODEL",
                     help="measure this unchanged model beside every other cell, in short windows interleaved "
                          "with the cell's own (as ab pairs its sides); compare then judges each cell against "
                          "its control's windows, which separates a change from a slower machine")
    add_run_options(run)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="finish the cells a killed or interrupted run did not record")
    resume.add_argument("run_dir", metavar="RUN_DIR")
    add_run_options(resume)
    resume.set_defaults(func=cmd_resume, dry_run=False, out=None)


def cmd_resume(args: argparse.Namespace) -> int:
    args.resume = args.run_dir
    return run_plan(args, plan_to_resume(args.run_dir))


def cmd_run(args: argparse.Namespace) -> int:
    if args.resume and not (args.suite or args.model):
        if args.control:
            raise UsageError("--control is part of the run's plan: resume keeps the one the run was started with")
        return run_plan(args, plan_to_resume(args.resume))
    return run_plan(args, build_plan(args).with_control(_control(args)))


def _control(args: argparse.Namespace) -> str | None:
    if not args.control:
        return None
    from bench import models

    return models.card(args.control.strip()).name  # an unknown model is one line and exit 2


def run_plan(args: argparse.Namespace, plan) -> int:
    from bench.render.formats import is_export
    from bench.render.tables import print_rows

    if args.dry_run:
        cells = [c.key() for c in plan.ordered()]
        shown = cells if is_export(args.format) or len(cells) <= DRY_RUN_ROWS else cells[:DRY_RUN_ROWS]
        # the key columns some cells have (a train cell's precision, grad_accum, dp ...)
        extra = [c for c in ("output_len", "precision", "optimizer", "grad_accum", "dp") if any(c in k for k in cells)]
        print_rows(shown, args.format, columns=DRY_RUN_COLUMNS + extra)
        more = f" (first {len(shown)} shown; --format csv lists all)" if len(shown) < len(cells) else ""
        print(f"{len(cells)} cells{more}", file=sys.stderr)
        return 0
    from bench.execute.sweep import executor_from_args
    from bench.execute.sweep import run_plan as execute
    from bench.results.store import read_rows

    run_dir = execute(plan, args.out, resume=args.resume, cache_dir=args.cache_dir,
                      instance=args.instance_type, progress=not args.no_progress,
                      worker_memory_gb=args.worker_memory_gb, executor=executor_from_args(args),
                      launch_timeout_s=getattr(args, "launch_timeout", None),
                      price_per_hour=_price(args))
    rows = read_rows(run_dir)
    print_rows(rows, args.format, title=f"{plan.name}: {run_dir}", before=machine_line(run_dir, rows, args.format))
    print(f"results: {run_dir}", file=sys.stderr)
    bad = [r for r in rows if r.get("status") in ("failed", "inaccurate")]
    return 1 if bad else 0


def machine_line(run_dir, rows: list[dict], fmt: str) -> list[str]:
    """The machine's own movement between the run's rounds: the line above the table (on
    stderr when stdout is for a machine)."""
    from bench.analysis.noise import machine_noise
    from bench.render.formats import is_export
    from bench.results.store import read_rows

    noise = machine_noise(rows, read_rows(run_dir, "rounds.jsonl"))
    if noise is None:
        return []
    if is_export(fmt):
        print(noise.line(), file=sys.stderr)
        return []
    return [noise.line()]


def _price(args: argparse.Namespace) -> float | None:
    from bench.results.prices import check_price

    given = getattr(args, "price_per_hour", None)
    return None if given is None else check_price(given)
