"""From flags to a Plan: shared by run, resume, ab and compile."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UsageError


def _first(values: list | None):
    if values is None:
        return None
    if len(values) != 1:
        raise UsageError("give a single value for --n-models/--workers-per-model/--threads")
    return values[0]


def build_plan(args: argparse.Namespace):
    """The plan the plan flags (add_plan_args) describe: a suite, or a grid of axes."""
    from bench.plan.grid import Plan

    measure = {"warmup_s": args.warmup, "min_duration_s": args.duration, "max_duration_s": args.max_duration,
               "min_samples": args.min_samples, "target_ci": args.target_ci, "trim_s": args.trim,
               "cell_timeout_s": args.cell_timeout, "keep_freed_memory": args.keep_freed_memory,
               "rounds": args.rounds, "max_rounds": args.max_rounds,
               "fresh_process_per_round": args.fresh_process_per_round, "round_budget_s": args.round_budget, "profile": args.profile}
    if args.duration is not None and args.max_duration is None:
        measure["max_duration_s"] = 3 * args.duration
    axes = {"models": args.model, "targets": args.target, "compilers": args.compiler, "dtypes": args.dtype,
            "scenarios": args.scenario, "batch_sizes": args.batch_size, "seq_lens": args.seq_len,
            "image_sizes": args.image_size, "weights": args.weights,
            "compiler_args": args.compiler_args.split() if args.compiler_args else None,
            "n_models": _first(args.n_models), "workers_per_model": _first(args.workers_per_model),
            "threads_per_worker": _first(args.threads),
            "rates": args.rate, "find_max_rate": True if args.find_max_rate else None,
            "p99_bound_ms": args.p99_bound, "burstiness": args.burstiness, "output_lens": args.output_len,
            "grad_accums": args.grad_accum, "optimizers": args.optimizer, "precisions": args.precision,
            "dps": args.dp}
    axes.update(_endpoint_axes(args, axes))
    if args.suite and args.url:
        raise UsageError("--url runs a grid of endpoint cells: give -m SERVED_MODEL and its flags, not --suite")
    if args.suite:
        return Plan.from_suite(args.suite, measure=measure, **axes)
    if not args.model:
        raise UsageError("give --suite NAME or -m MODEL (see `trnbench list models`)")
    from bench.plan.cell import Measure

    m = Measure(**{k: v for k, v in measure.items() if v is not None})
    return Plan.from_grid(measure=m, **{k: v for k, v in axes.items() if v is not None})


def _endpoint_axes(args: argparse.Namespace, axes: dict) -> dict:
    """The endpoint flags as plan axes (bench.targets.endpoint.plan_axes)."""
    from bench.targets.endpoint import plan_axes

    return plan_axes(axes.get("targets") or [], url=args.url, api=args.api, compiler=args.compiler,
                     concurrency=args.concurrency, tokenizer=args.tokenizer, dataset=args.dataset, slo=args.slo,
                     api_key_env=args.api_key_env, launch=args.launch, launch_timeout=args.launch_timeout)


def plan_to_resume(run_dir: str):
    """The plan a run directory was started with (its run.json)."""
    from bench.plan.grid import Plan
    from bench.results.store import read_meta

    return Plan.from_dict(read_meta(Path(run_dir))["plan"], source=f"{run_dir}/run.json")
