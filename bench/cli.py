"""trnbench command line: run | list | env | show | compare | report.

Only argparse is imported at start-up; torch, transformers, pandas and rich are imported
by the commands that need them, so `trnbench --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.cli_args import Parser, add_plan_args, names_of
from bench.errors import UsageError

EXIT_USAGE = 2
DRY_RUN_ROWS = 100  # a dry run's table shows this many cells
FORMATS = ("table", "csv", "md", "json")
MODEL_COLUMNS = ["model", "family", "task", "input", "params", "default shape", "pretrained"]


def _first(values: list | None):
    if values is None:
        return None
    if len(values) != 1:
        raise UsageError("give a single value for --n-models/--workers-per-model/--threads")
    return values[0]


def build_plan(args: argparse.Namespace):
    from bench.plan.grid import Plan

    measure = {"warmup_s": args.warmup, "min_duration_s": args.duration, "max_duration_s": args.max_duration,
               "min_samples": args.min_samples, "target_ci": args.target_ci, "trim_s": args.trim,
               "cell_timeout_s": args.cell_timeout, "keep_freed_memory": args.keep_freed_memory,
               "rounds": args.rounds, "max_rounds": args.max_rounds,
               "fresh_process_per_round": args.fresh_process_per_round, "round_budget_s": args.round_budget}
    if args.duration is not None and args.max_duration is None:
        measure["max_duration_s"] = 3 * args.duration
    axes = {"models": args.model, "targets": args.target, "compilers": args.compiler, "dtypes": args.dtype,
            "scenarios": args.scenario, "batch_sizes": args.batch_size, "seq_lens": args.seq_len,
            "image_sizes": args.image_size, "weights": args.weights,
            "compiler_args": args.compiler_args.split() if args.compiler_args else None,
            "n_models": _first(args.n_models), "workers_per_model": _first(args.workers_per_model),
            "threads_per_worker": _first(args.threads),
            "rates": args.rate, "find_max_rate": True if args.find_max_rate else None,
            "p99_bound_ms": args.p99_bound, "burstiness": args.burstiness, "output_lens": args.output_len}
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


def _plan_to_resume(run_dir: str):
    from pathlib import Path

    from bench.plan.grid import Plan
    from bench.results.store import read_meta

    return Plan.from_dict(read_meta(Path(run_dir))["plan"], source=f"{run_dir}/run.json")


def cmd_resume(args: argparse.Namespace) -> int:
    args.resume = args.run_dir
    return _run_plan(args, _plan_to_resume(args.run_dir))


def cmd_run(args: argparse.Namespace) -> int:
    if args.resume and not (args.suite or args.model):
        if args.control:
            raise UsageError("--control is part of the run's plan: resume keeps the one the run was started with")
        return _run_plan(args, _plan_to_resume(args.resume))
    return _run_plan(args, build_plan(args).with_control(_control(args)))


def _control(args: argparse.Namespace) -> str | None:
    if not args.control:
        return None
    from bench import models

    return models.card(args.control.strip()).name  # an unknown model is one line and exit 2


def _run_plan(args: argparse.Namespace, plan) -> int:
    if args.dry_run:
        from bench.render.tables import print_rows

        cells = [c.key() for c in plan.ordered()]
        shown = cells if args.format in ("csv", "json") or len(cells) <= DRY_RUN_ROWS else cells[:DRY_RUN_ROWS]
        print_rows(shown, args.format,
                   columns=["model", "target", "compiler", "dtype", "scenario", "batch_size", "seq_len",
                            "image_size", "n_models", "workers_per_model", "threads_per_worker"])
        more = f" (first {len(shown)} shown; --format csv lists all)" if len(shown) < len(cells) else ""
        print(f"{len(cells)} cells{more}", file=sys.stderr)
        return 0
    from bench.execute.sweep import executor_from_args, run_plan
    from bench.render.tables import print_rows
    from bench.results.store import read_rows

    run_dir = run_plan(plan, args.out, resume=args.resume, cache_dir=args.cache_dir,
                       instance=args.instance_type, progress=not args.no_progress,
                       worker_memory_gb=args.worker_memory_gb, executor=executor_from_args(args),
                       launch_timeout_s=getattr(args, "launch_timeout", None) or 600.0,
                       price_per_hour=_price(args))
    rows = read_rows(run_dir)
    _machine_line(run_dir, rows, args.format)
    print_rows(rows, args.format, title=f"{plan.name}: {run_dir}")
    print(f"results: {run_dir}", file=sys.stderr)
    bad = [r for r in rows if r.get("status") in ("failed", "inaccurate")]
    return 1 if bad else 0


def _machine_line(run_dir, rows: list[dict], fmt: str) -> None:
    """The machine's own movement between the run's rounds, one line above the table (on
    stderr when stdout is machine-readable)."""
    from bench.analysis.noise import machine_noise
    from bench.results.store import read_rows

    noise = machine_noise(rows, read_rows(run_dir, "rounds.jsonl"))
    if noise is not None:
        print(noise.line(), file=sys.stdout if fmt == "table" else sys.stderr)


def _price(args: argparse.Namespace) -> float | None:
    from bench.results.prices import check_price

    given = getattr(args, "price_per_hour", None)
    return None if given is None else check_price(given)


def _side_b(args: argparse.Namespace) -> argparse.Namespace:
    """Side A's flags with those in --b "..." replaced: any run flag (model, compiler, args, dtype, ...)."""
    import shlex

    try:
        tokens = shlex.split(args.b or "")
    except ValueError as exc:
        raise UsageError(f"--b: cannot split {args.b!r}: {exc}") from None
    only = Parser(prog="--b", add_help=False)
    add_plan_args(only)
    try:
        given, unknown = only.parse_known_args(_glue_compiler_args(tokens))
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
    from dataclasses import replace as _replace

    from bench.analysis.paired import compare_paired
    from bench.execute.ab import run_ab
    from bench.render.compare import render_comparison

    plan_a = build_plan(args)
    plan_b = build_plan(_side_b(args))
    plan_b = _replace(plan_b, name=f"{plan_b.name} (B)")
    root, dir_a, dir_b = run_ab(plan_a, plan_b, args.out, rounds=args.rounds, python_b=args.b_python,
                                b_flags=args.b or "",
                                cache_dir=args.cache_dir, instance=args.instance_type,
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


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile a plan's artifacts into the cache without measuring (e.g. on a CPU host for inf2)."""
    from bench.execute.precompile import compile_plan
    from bench.render.tables import print_rows

    plan = build_plan(args)
    rows = compile_plan(plan, args.cache_dir)
    print_rows(rows, args.format, columns=["model", "target", "compiler", "dtype", "batch_size", "seq_len",
                                           "image_size", "compiler_args", "status", "compile_s", "error"])
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def cmd_show(args: argparse.Namespace) -> int:
    from bench.render.tables import print_rows
    from bench.results.store import read_meta, read_rows, run_dirs

    if args.format == "parquet" and not args.output:
        raise UsageError("--format parquet writes a file: give --output FILE.parquet")
    rows = []
    dirs = run_dirs(args.runs)
    for d in dirs:
        read_meta(d)
        rows.extend(read_rows(d))
    if args.format == "parquet":
        from bench.results.table import write_parquet

        columns = args.columns.split(",") if args.columns else None
        path = write_parquet([{k: r.get(k) for k in columns} if columns else r for r in rows], args.output)
        print(f"parquet: {path} ({len(rows)} rows)", file=sys.stderr)
        return 0
    if len(dirs) == 1:
        _machine_line(dirs[0], rows, args.format)
    print_rows(rows, args.format, columns=args.columns.split(",") if args.columns else None)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from bench.render.tables import print_rows

    if args.what == "models":
        from bench import models

        rows = []
        for c in sorted(models.registry().values(), key=lambda c: (c.tiny, c.family, c.name)):
            params = c.params if c.params is not None else models.count_params(c)
            shape = (f"seq {c.shape.get('seq_len', 128)}" if c.input != "image"
                     else f"{c.shape.get('image_size', 224)}px")
            rows.append({"model": c.name, "family": c.family, "task": c.task, "input": c.input,
                         "params": f"{params / 1e6:.2f}M", "default shape": shape,
                         "pretrained": c.pretrained or ""})
        print_rows(rows, args.format, columns=MODEL_COLUMNS)
    elif args.what == "suites":
        from bench.plan.suite import find_suite, list_suites
        from bench.tomlfile import read_toml

        rows = [{"suite": n, "description": read_toml(find_suite(n)).get("description", "")}
                for n in list_suites()]
        print_rows(rows, args.format, columns=["suite", "description"])
    else:
        from bench import targets

        rows = []
        for name in targets.names():
            t = targets.get(name)
            a = t.availability()
            rows.append({"target": name, "compilers": ", ".join(t.compilers), "dtypes": ", ".join(t.dtypes),
                         "available": "yes" if a.ok else "no", "reason": a.reason})
        print_rows(rows, args.format, columns=["target", "compilers", "dtypes", "available", "reason"])
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    import json

    from bench import targets
    from bench.results import env

    info = env.capture(args.instance_type)
    info["targets"] = {}
    for name in targets.names():
        a = targets.get(name).availability()
        info["targets"][name] = {"available": a.ok, "reason": a.reason}
    if args.format == "json":
        print(json.dumps(info, indent=1, default=str))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if k != "targets":
            print(f"{k:<{width}}  {v if v not in ('', None) else '-'}")
    for name, a in info["targets"].items():
        state = ("available" + (f" ({a['reason']})" if a["reason"] else "")) if a["available"] \
            else "unavailable: " + a["reason"]
        print(f"{'target ' + name:<{width}}  {state}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from bench.doctor import run

    return run(bundle=args.bundle, do_check=not args.no_check)


def cmd_compare(args: argparse.Namespace) -> int:
    """Run vs run (exit 1 on a regression with --fail-on-regression), run vs published
    figures (--reference), or a pivot (--by)."""
    from bench.analysis.compare import compare_runs
    from bench.analysis.pivot import pivot
    from bench.analysis.reference import compare_reference
    from bench.render.compare import render_comparison, render_pivot, render_reference

    if args.reference and args.by:
        raise UsageError("give either --reference or --by, not both")
    if args.reference:
        rows, missing = compare_reference(args.runs, args.reference)
        if not rows and not missing:
            raise UsageError("no usable rows (status ok or unstable) in the given runs")
        render_reference(rows, missing, args.reference, args.format)
        return 0
    if args.by:
        render_pivot(pivot(args.runs, args.by, args.metric), args.format)
        return 0
    if len(args.runs) == 1 and (Path(args.runs[0]) / "ab.json").is_file():  # an `ab` run: paired again
        from bench.analysis.paired import compare_paired

        root = Path(args.runs[0])
        comparison, _ = compare_paired(root / "a", root / "b", metrics=args.metric, threshold=args.threshold,
                                       alpha=args.alpha)
    elif len(args.runs) != 2:
        raise UsageError(f"compare needs two runs, A and B (got {len(args.runs)}), or one `trnbench ab` "
                         "directory; for more runs side by side use --by run")
    else:
        ignore = [c.strip() for c in (args.ignore_key or "").split(",") if c.strip()]
        comparison = compare_runs(args.runs[0], args.runs[1], metrics=args.metric, threshold=args.threshold,
                                  alpha=args.alpha, ignore=ignore, fail_on_shift=args.fail_on_shift,
                                  control=[m.strip() for m in (args.control or "").split(",") if m.strip()])
    render_comparison(comparison, args.format)
    if args.fail_on_regression and comparison.regressions:
        print(f"regression: {comparison.summary()}", file=sys.stderr)
        return 1
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    """`reference import FILE.csv`: one of the Neuron docs' published data files -> our table's rows."""
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


def cmd_report(args: argparse.Namespace) -> int:
    from bench.render.report import run_cli

    return run_cli(args)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", help="compiled-artifact cache (default ~/.cache/trnbench/artifacts)")
    p.add_argument("--instance-type", help="record this instance type instead of the DMI product name")
    p.add_argument("--worker-memory-gb", type=float, help="cap each worker's memory (address space)")
    p.add_argument("--price-per-hour", metavar="USD", help="the instance's hourly price, for cost_per_1m_inf "
                   "(default: results/reference/instance-prices.csv for the instance type)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--format", choices=FORMATS, default="table", help="final table format")
    x = p.add_argument_group("where the cells run (default: here, one after another)")
    x.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="ray: every cell is a Ray task on a cluster (pip install 'trnbench[ray]')")
    x.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to use, e.g. auto or HEAD_IP:6379 (default: $RAY_ADDRESS, "
                        "else a new local Ray instance)")
    x.add_argument("--on", type=names_of, metavar="TYPES",
                   help="run every cell once on each instance type, e.g. inf2.xlarge,trn1.32xlarge "
                        "(nodes advertise the resource instance:TYPE)")
    x.add_argument("--retries", type=int,
                   help="re-run a cell whose Ray process or node died this many times (default 1), "
                        "then record it as failed")


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="trnbench",
                     description="Benchmark models on AWS Neuron (trn1/trn2/inf2), CUDA and CPU, "
                                 "and record comparable results.")
    from bench.version import __version__

    parser.add_argument("--version", action="version", version=f"trnbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

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
    _add_run_options(run)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="finish the cells a killed or interrupted run did not record")
    resume.add_argument("run_dir", metavar="RUN_DIR")
    _add_run_options(resume)
    resume.set_defaults(func=cmd_resume, dry_run=False, out=None)

    ab = sub.add_parser("ab", help="A/B in one run: side A's plan and side B (its flags changed by --b, or "
                                   "another Python with --b-python), interleaved round by round, compared paired")
    add_plan_args(ab)
    ab.add_argument("--b", metavar="FLAGS", help="run flags that make side B, e.g. --b '--compiler jit' or "
                                                 "--b '-m bert-6l' (none: an A/A calibration)")
    ab.add_argument("--b-python", metavar="PATH", help="side B's workers run under this interpreter (another "
                                                       "environment: SDK 2.x vs 2.y, torch X vs Y)")
    ab.add_argument("-o", "--out", default="results", help="results folder (default results/)")
    ab.add_argument("--metric", help="comma-separated: p50, p90, p95, p99, mean, throughput (default p50,p99,throughput)")
    ab.add_argument("--threshold", default="5%", help="smallest change that counts (default 5%%)")
    ab.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate (Holm; default 0.05)")
    ab.add_argument("--fail-on-regression", action="store_true", help="exit status 1 when B is significantly slower")
    ab.add_argument("--cache-dir", help="compiled-artifact cache (default ~/.cache/trnbench/artifacts)")
    ab.add_argument("--instance-type", help="record this instance type instead of the DMI product name")
    ab.add_argument("--worker-memory-gb", type=float, help="cap each worker's memory (address space)")
    ab.add_argument("--no-progress", action="store_true", help="no progress bar")
    ab.add_argument("--format", choices=FORMATS, default="table", help="final table format")
    ab.set_defaults(func=cmd_ab)

    comp = sub.add_parser("compile", help="compile a plan's artifacts into the cache without measuring "
                                          "(neuron: on a host without devices too, with --target)")
    add_plan_args(comp)
    comp.add_argument("--cache-dir", help="compiled-artifact cache (default ~/.cache/trnbench/artifacts)")
    comp.add_argument("--format", choices=FORMATS, default="table")
    comp.set_defaults(func=cmd_compile)

    show = sub.add_parser("show", help="print the results of one or more runs")
    show.add_argument("runs", nargs="+", metavar="RUN_DIR", help="a run directory or a folder of runs")
    show.add_argument("--format", choices=(*FORMATS, "parquet"), default="table",
                      help="parquet: typed columns (README, Results) to --output FILE.parquet")
    show.add_argument("--output", metavar="FILE", help="with --format parquet: the file to write")
    show.add_argument("--columns", help="comma-separated columns to show")
    show.set_defaults(func=cmd_show)

    lst = sub.add_parser("list", help="list models, suites or targets")
    lst.add_argument("what", choices=("models", "suites", "targets"))
    lst.add_argument("--format", choices=FORMATS, default="table")
    lst.set_defaults(func=cmd_list)

    env = sub.add_parser("env", help="host, accelerators, software versions, and why a target is unavailable")
    env.add_argument("--instance-type")
    env.add_argument("--format", choices=("text", "json"), default="text")
    env.set_defaults(func=cmd_env)

    doc = sub.add_parser("doctor", help="one screen on what a first run will do on this host, and why "
                                        "(with a Neuron device: compiles and runs tiny-bert)")
    doc.add_argument("--bundle", metavar="FILE",
                     help="also write FILE (.tar.gz): neuron-ls in both forms, a neuron-monitor report, the "
                          "compile's work-directory listing and log, `pytest -m neuron` output")
    doc.add_argument("--no-check", action="store_true", help="do not compile and run tiny-bert")
    doc.set_defaults(func=cmd_doctor)

    cmp = sub.add_parser("compare", help="compare runs (B/A with 95%% CIs, a CI gate), a run with published "
                                         "figures (--reference), or runs side by side (--by)")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="A B (run directories or folders of runs); "
                     "with --reference or --by: any number of runs")
    cmp.add_argument("--metric", help="comma-separated: p50, p90, p95, p99, mean, throughput; ttft, tpot "
                     "for generate (default p50,p99,throughput)")
    cmp.add_argument("--threshold", default="5%", help="smallest change that counts, e.g. 5%% or 0.05 (default 5%%)")
    cmp.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate (Holm; default 0.05)")
    cmp.add_argument("--fail-on-regression", action="store_true",
                     help="exit status 1 when a cell is significantly slower than the threshold, relative to "
                          "the run-wide shift, or broke")
    cmp.add_argument("--fail-on-shift", metavar="PCT",
                     help="with --fail-on-regression: also fail when the run-wide shift itself is slower than PCT")
    cmp.add_argument("--control", metavar="MODEL[,MODEL]",
                     help="separate runs: judge every other cell against these models' cells (unchanged, "
                          "measured in both runs) instead of the median shift of all cells")
    cmp.add_argument("--ignore-key", help="key columns to leave out of the join, e.g. compiler_args")
    cmp.add_argument("--reference", metavar="NAME_OR_CSV",
                     help="compare with published figures: a name in results/reference/ or a CSV path")
    cmp.add_argument("--by", help="pivot: one column per target, sdk, instance, run (or any results column)")
    cmp.add_argument("--format", choices=FORMATS, default="table")
    cmp.set_defaults(func=cmd_compare)

    rep = sub.add_parser("report", help="write an HTML or Markdown report with tables and plots")
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
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run directories or folders of runs")
    rep.add_argument("-o", "--out", default="report.html", help="report.html (self-contained) or report.md")
    rep.add_argument("--title", help="report title")
    rep.add_argument("--by", choices=("time", "sdk"), default="time",
                     help="three or more runs: their history against run time or SDK version (default time)")
    rep.set_defaults(func=cmd_report)
    return parser


def _glue_compiler_args(argv: list[str]) -> list[str]:
    """`--compiler-args '--auto-cast=matmult'` -> `--compiler-args=--auto-cast=matmult`.

    argparse takes a value that starts with '-' for an option; compiler flags always do.
    """
    out: list[str] = []
    it = iter(argv)
    for tok in it:
        if tok in ("--compiler-args", "--b"):
            nxt = next(it, None)
            out.append(tok if nxt is None else f"{tok}={nxt}")
        else:
            out.append(tok)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    try:
        args = parser.parse_args(_glue_compiler_args(list(sys.argv[1:] if argv is None else argv)))
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


if __name__ == "__main__":
    sys.exit(main())
