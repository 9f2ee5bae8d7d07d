"""`trnbench compare`: run vs run (a CI gate), run vs published figures (--reference), or
runs side by side (--by)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.options import add_format, add_verdict_options
from bench.errors import UsageError


def add(sub) -> None:
    cmp = sub.add_parser("compare", help="compare runs (B/A with 95%% CIs, a CI gate), a run with published "
                                         "figures (--reference), or runs side by side (--by)")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="A B (run directories or folders of runs); "
                     "with --reference or --by: any number of runs")
    add_verdict_options(cmp)
    cmp.add_argument("--fail-on-shift", metavar="PCT",
                     help="with --fail-on-regression: also fail when the run-wide shift itself is slower than PCT")
    cmp.add_argument("--control", metavar="MODEL[,MODEL]",
                     help="separate runs: judge every other cell against these models' cells (unchanged, "
                          "measured in both runs) instead of the median shift of all cells")
    cmp.add_argument("--ignore-key", help="key columns to leave out of the join, e.g. compiler_args")
    cmp.add_argument("--reference", metavar="NAME_OR_CSV",
                     help="compare with published figures: a name in results/reference/ or a CSV path")
    cmp.add_argument("--by", help="pivot: one column per target, sdk, instance, run (or any results column)")
    add_format(cmp)
    cmp.set_defaults(func=cmd_compare)


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
