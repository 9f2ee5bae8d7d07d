"""Broken on purpose, then caught by: proof that the test suite notices deliberate breakage.

    .venv/bin/python benchmarks/mutations.py [--only NAME]

A test that passes whatever the code does proves nothing. Each mutation below is a small,
realistic bug in one behaviour the docs promise. It names the function it is written into
(its qualified name, found wherever it lives under bench/), a piece of code inside it and
what that becomes: both are compared as parsed code, so formatting, comments, line numbers and
moves between modules do not break a mutation; a renamed function or a rewritten line says
so ("not found") instead of silently testing nothing. The mutated module is written out from
its syntax tree (ast.unparse), the tests named for it are run (found by name anywhere under
tests/), and the file's original bytes are written back (always, in a `finally`). The same
tests are first run on the unmutated tree and must pass, so a failure means the mutation, not
a broken checkout. A file with uncommitted changes is refused: its restore would be
ambiguous. The table at the end names the test that failed first for each mutation; the
exit status is 1 when any mutation was not caught.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug: inside the function `where` (e.g. "CellRunner.run", "verdict_of"; a
    module first where the name is not unique: "bench.cli.run:run_plan"),
    the code `old` (a statement or an expression, exactly once there) becomes `new` ("" removes
    a statement); the tests named in `tests` (test function names) must fail."""

    name: str
    broken: str
    where: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation("resume-all-rounds", "resume does not write the row of a cell whose rounds were all kept",
             "CellRunner.resume", "self.conclude(unit)", "",
             ("test_a_kill_at_each_write_boundary_then_resume_records_every_cell_once",)),
    Mutation("control-order", "the control's window always comes first (no A B B A alternation)",
             "CellRunner.run", "(u, self.partner[u.key]) if r % 2 == 0 else (self.partner[u.key], u)",
             "(u, self.partner[u.key])",
             ("test_every_cell_has_the_controls_windows_beside_it_round_by_round",)),
    Mutation("budget-order", "extra rounds go to the narrowest interval first",
             "CellRunner.run", "-interval_width(u.cell, self.results[u.key])",
             "interval_width(u.cell, self.results[u.key])",
             ("test_extra_rounds_go_to_the_widest_interval_first",)),
    Mutation("control-pairs", "compare ignores the control's windows beside each cell",
             "compare_runs", "windows_beside(row, ca, cb, m)", "",
             ("test_compare_judges_each_cell_against_the_controls_windows_beside_it",)),
    Mutation("store-tail", "a torn last row is not cut before the next row is appended",
             "RunStore._append_line", "repair_tail(f)", "",
             ("test_a_torn_tail_is_cut_before_the_next_row",
              "test_a_torn_last_row_then_resume_records_every_planned_cell_once")),
    Mutation("holm", "compare judges rows by their raw p, without Holm's correction",
             "compare_runs", "holm([r.p for r in rows])", "[r.p for r in rows]",
             ("test_holm_turns_a_raw_significant_row_into_no_change", "test_holm_controls_false_alarms_over_many_rows")),
    Mutation("threshold", "the verdict ignores the threshold on the slower side",
             "verdict_of", "lo > factor", "lo > 1.0", ("test_verdict_edges",)),
    Mutation("ci-at-zero", "a CI whose low end is <= 0 can still read 'faster'",
             "verdict_of", "not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0",
             "not (math.isfinite(lo) and math.isfinite(hi))", ("test_verdict_edges",)),
    Mutation("design-effect", "requests correlated in time no longer widen the CI",
             "design_effect", "return max(1.0, long_run / var)", "return 1.0",
             ("test_a_slow_stretch_of_consecutive_requests_widens_the_ci",)),
    Mutation("sync", "the latency loop no longer syncs the device inside the timed region",
             "run_closed_loop", "needs_sync = not getattr(target, 'sync_is_noop', False)", "needs_sync = False",
             ("test_the_targets_sync_is_inside_the_timed_region",)),
    Mutation("coordinated-omission", "server latency counted from the send, not the scheduled time",
             "summarise_open", "(latency, queue, service) = (e - s, b - s, e - b)",
             "(latency, queue, service) = (e - b, b - s, e - b)",
             ("test_latency_counts_from_the_scheduled_time_no_coordinated_omission",)),
    Mutation("cache-key-dtype", "the compile cache key leaves out the dtype",
             "Target.prepare", "dict(cache_key or {}, target=self.name, compiler=cell.compiler, "
             "compiler_args=list(cell.compiler_args), dtype=cell.dtype, versions=self.versions())",
             "dict(cache_key or {}, target=self.name, compiler=cell.compiler, "
             "compiler_args=list(cell.compiler_args), versions=self.versions())",
             ("test_every_part_of_the_cache_key_is_a_miss_when_it_changes",)),
    Mutation("monitor-filter", "neuron-monitor reports of a foreign runtime count as ours",
             "MonitorWatch.stop", "summarise_monitor(self.reports, self.tag_regex)", "summarise_monitor(self.reports)",
             ("test_a_monitor_that_ignores_the_tag_filter_still_counts_only_our_runtimes",)),
    Mutation("control-pairing", "--control divides by the control's pooled value, not its round's",
             "_relative_logs", "[c[label] for c in controls if label in c]",
             "[float(np.mean(list(c.values()))) for c in controls if label in c]",
             ("test_the_control_is_paired_round_by_round_within_each_run",)),
    Mutation("round-quantile", "a round needs ~370 requests for its own p99 (pooled otherwise)",
             "min_group_size", "max(6, round(1.0 / (1.0 - q)))", "max(370, round(1.0 / (1.0 - q)))",
             ("test_p99_of_rounds_of_100_requests_is_compared_over_the_rounds",)),
    Mutation("run-exit", "`run` exits 0 with failed or inaccurate rows",
             "bench.cli.run:run_plan", "return 1 if bad else 0", "return 0",
             ("test_run_exits_1_when_a_cell_is_inaccurate_or_failed",)),
    Mutation("latency-threads", "a latency cell takes every core instead of leaving one free",
             "default_threads", "return max(1, cpus - 1)", "return max(1, cpus)",
             ("test_cpu_thread_defaults_on_four_usable_cores",)),
    Mutation("orphan-probes", "resume keeps the probes of an unfinished max-rate search",
             "RunStore.lock", "self._drop_orphan_probes()", "",
             ("test_resume_of_an_interrupted_max_rate_search_records_each_probe_once",)),
    Mutation("auto-cast", "outputs judged at the cell's dtype, not the auto-cast precision",
             "_prepare", "target.accuracy_dtype(cell)", "cell.dtype",
             ("test_an_auto_cast_compile_really_differs_and_is_judged_at_the_cast_precision",)),
    Mutation("b-python", "ab --b-python starts side B's workers with this interpreter, not that one",
             "WorkerPool._start", "spawn.set_executable(self.python)", "",
             ("test_ab_b_python_starts_side_bs_workers_under_that_interpreter",)),
    Mutation("launch-kill", "a launched server that ignores SIGTERM is never SIGKILLed (its group outlives the run)",
             "LaunchedServer.stop", "os.killpg(self.proc.pid, signal.SIGKILL)", "",
             ("test_a_launched_server_that_ignores_sigterm_is_killed_with_its_whole_group",)),
    Mutation("api-key", "the endpoint clients send no Authorization header (--api-key-env ignored)",
             "Endpoint.headers", "{'Authorization': f'Bearer {key}'} if key else {}", "{}",
             ("test_an_api_key_comes_from_its_variable_reaches_the_server_and_is_written_nowhere",)),
]


def _same(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a, annotate_fields=False) == ast.dump(b, annotate_fields=False)


def _parse_piece(code: str) -> tuple[ast.AST, bool]:
    """(the node, whether it is a statement) of a mutation's code."""
    try:
        return ast.parse(code, mode="eval").body, False
    except SyntaxError:
        return ast.parse(code).body[0], True


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function and method of a module."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")


def locate(m: Mutation) -> tuple[Path | None, str]:
    """The file holding `m.where` and the mutated source ('' and a reason when it cannot be applied)."""
    old, statement = _parse_piece(m.old)
    if not m.new and not statement:  # a call removed: the statement that is that call
        old, statement = ast.Expr(old), True
    module, _, where = m.where.rpartition(":")  # "bench.cli.run:run_plan" where a name is not unique
    for path in sorted((ROOT / "bench").rglob("*.py")):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if module and dotted != module:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, fn in _functions(tree):
            if name != where:
                continue
            hits = [(parent, field, i) for parent in ast.walk(fn) for field, value in ast.iter_fields(parent)
                    for i, child in (enumerate(value) if isinstance(value, list) else [(None, value)])
                    if isinstance(child, ast.AST) and _same(child, old)]
            if len(hits) != 1:
                return path, f"`old` found {len(hits)} times in {m.where} ({path.relative_to(ROOT)})"
            parent, field, i = hits[0]
            new = ast.Pass() if statement and not m.new else _parse_piece(m.new)[0]
            if i is None:
                setattr(parent, field, new)
            else:
                getattr(parent, field)[i] = new
            return path, ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    return None, f"no function {m.where} under bench/"


@dataclass
class Outcome:
    mutation: Mutation
    status: str  # caught | NOT caught | error
    first_failed: str
    detail: str
    seconds: float


def pytest(names: list[str], timeout_s: float) -> tuple[int | None, str]:
    """Run the tests named `names` (test functions, wherever they are under tests/); (exit
    code, or None on a timeout, and its output). No bytecode is written, so a mutated module
    never leaves a .pyc behind for the restored source."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "tests", "-q", "-x", "-p", "no:cacheprovider", "-rfE",
           "-k", " or ".join(names)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group: workers the tests started go too
        out, _ = proc.communicate()
        return None, out


def first_failed(output: str) -> str:
    """The node id on the first 'FAILED ...' line of pytest's -rf summary ('' if none)."""
    m = re.search(r"^FAILED (\S+)", output, re.MULTILINE)
    return m.group(1) if m else ""


def is_clean(file: str) -> bool:
    return subprocess.run(["git", "diff", "--quiet", "HEAD", "--", file], cwd=ROOT).returncode == 0


def run_one(m: Mutation, timeout_s: float) -> Outcome:
    """Apply `m`, run its tests, restore the exact original bytes whatever happened."""
    path, mutated = locate(m)
    if path is None or not mutated.endswith("\n"):
        return Outcome(m, "error", "", mutated or "not found", 0.0)
    file = str(path.relative_to(ROOT))
    if not is_clean(file):
        return Outcome(m, "error", "", f"{file} has uncommitted changes: refused", 0.0)
    original = path.read_bytes()
    t0 = time.perf_counter()
    try:
        path.write_bytes(mutated.encode("utf-8"))
        rc, out = pytest(list(m.tests), timeout_s)
    finally:
        path.write_bytes(original)
    seconds = time.perf_counter() - t0
    if path.read_bytes() != original or not is_clean(file):
        raise SystemExit(f"{file} was not restored: check it with git diff")
    failed = first_failed(out)
    tail = out.strip().splitlines()[-1] if out.strip() else ""
    if rc == 1 and failed:
        return Outcome(m, "caught", failed, tail, seconds)
    if rc == 0:
        return Outcome(m, "NOT caught", "", tail, seconds)
    why = "timed out" if rc is None else f"pytest exit {rc}"
    return Outcome(m, "error", failed, f"{why}: {tail}", seconds)


def baseline(mutations: list[Mutation], timeout_s: float) -> None:
    """The named tests, unmutated and all together, must pass (none skipped)."""
    nodes = list(dict.fromkeys(t for m in mutations for t in m.tests))
    t0 = time.perf_counter()
    rc, out = pytest(nodes, timeout_s * 2)
    tail = out.strip().splitlines()[-1] if out.strip() else ""
    if rc != 0 or "skipped" in tail:
        print(out[-4000:])
        raise SystemExit(f"baseline: the unmutated tests must all pass and run (exit {rc}): {tail}")
    print(f"baseline: {len(nodes)} test ids pass unmutated ({tail}) in {time.perf_counter() - t0:.0f} s")


def table(outcomes: list[Outcome]) -> str:
    rows = [("mutation", "behaviour broken", "caught by", "s")]
    for o in outcomes:
        by = o.first_failed.split("::", 1)[-1] if o.status == "caught" else o.status.upper()
        if o.status == "error":
            by = f"ERROR ({o.detail})"
        rows.append((o.mutation.name, o.mutation.broken, by, f"{o.seconds:.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>4}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this mutation (repeatable): " + ", ".join(m.name for m in MUTATIONS))
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per pytest run")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown or not chosen:
        parser.error(f"no mutation named {', '.join(sorted(unknown)) or args.only}")
    located = [locate(m) for m in chosen]
    missing = [f"{m.name}: {why}" for m, (path, why) in zip(chosen, located) if path is None or not why.endswith("\n")]
    if missing:
        raise SystemExit("mutations that cannot be applied (renamed or rewritten code?):\n  " + "\n  ".join(missing))
    dirty = sorted({str(path.relative_to(ROOT)) for path, _ in located if not is_clean(str(path.relative_to(ROOT)))})
    if dirty:
        raise SystemExit(f"uncommitted changes in {', '.join(dirty)}: commit or stash them first")
    t0 = time.perf_counter()
    baseline(chosen, args.timeout)
    outcomes = []
    for m in chosen:
        o = run_one(m, args.timeout)
        print(f"{m.name}: {o.status} {o.first_failed or o.detail} ({o.seconds:.0f} s)", flush=True)
        outcomes.append(o)
    print()
    print(table(outcomes))
    missed = [o.mutation.name for o in outcomes if o.status != "caught"]
    print(f"\n{len(outcomes) - len(missed)} of {len(outcomes)} caught in {time.perf_counter() - t0:.0f} s"
          + (f"; not caught: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
