"""`trnbench ab`: two plans measured in one run, interleaved round by round.

Side A's and side B's cells pair by position. In every round each pair is measured back to
back — A then B in odd rounds, B then A in even ones (an A B B A ... order, so a drift that is
linear in time cancels), in short windows (pair_rounds) — each side in worker processes of
its own, side B optionally under another environment's interpreter (`python_b`: SDK 2.x
against SDK 2.y, torch X against torch Y, on one instance). The two sides land in one directory, `<out>/<ab_id>/{a,b}/`, each an
ordinary run directory (compare, report and resume read them as such); `ab.json` says how
they pair. bench.analysis.paired compares them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.execute.local import LocalMeasurer
from bench.execute.progress import progress_bar
from bench.execute.rounds import pair_rounds, planned_rounds, with_rounds
from bench.execute.runner import CellRunner, Unit
from bench.paths import ROOT
from bench.plan.grid import Plan
from bench.results import env as host_env
from bench.results.store import RunStore, new_run_id


def check_python(python: str) -> dict[str, str]:
    """The environment a worker under `python` needs (PYTHONPATH to this trnbench if it has
    none of its own); UsageError when it is not a Python with torch."""
    probe = "import json, torch, bench; print(json.dumps({'torch': torch.__version__}))"
    for extra in ({}, {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}):
        try:
            out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=300,
                                 env={**os.environ, **extra}, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise UsageError(f"--b-python {python}: cannot run it ({exc})") from None
        if out.returncode == 0 and _reports_torch(out.stdout):
            return extra
        if "No module named 'torch'" in out.stderr:
            break
    last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}, no torch version printed"])[-1]
    raise UsageError(f"--b-python {python}: not a Python with torch and trnbench ({last[:200]})")


def _reports_torch(stdout: str) -> bool:
    try:
        return "torch" in json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError, TypeError):
        return False


def environment_of(python: str | None, extra: dict[str, str], instance: str | None) -> dict[str, Any]:
    """The environment columns of a side: this process's, or those `python` reports."""
    if python is None:
        return host_env.capture(instance)
    code = ("import json, sys; from bench.results import env; "
            f"print(json.dumps(env.capture({instance!r}), default=str))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **extra}, check=False)
    try:
        return dict(json.loads(out.stdout.strip().splitlines()[-1]), python_executable=python)
    except (ValueError, IndexError):
        return dict(host_env.capture(instance), python_executable=python)


def run_ab(plan_a: Plan, plan_b: Plan, out: str | Path, *, rounds: int | None = None, python_b: str | None = None,
           b_flags: str = "", cache_dir=None, instance: str | None = None, progress: bool = True,
           worker_memory_gb: float | None = None) -> tuple[Path, Path, Path]:
    """Measure both plans interleaved, every pair in exactly `rounds` rounds (default:
    pair_rounds), so each pair has a ratio per round; returns (the ab directory, side A's run,
    side B's run)."""
    if len(plan_a.cells) != len(plan_b.cells):
        raise UsageError(f"the two sides plan different numbers of cells (A {len(plan_a.cells)}, "
                         f"B {len(plan_b.cells)}): --b must change cells, not the grid's size")
    if rounds is not None and rounds < 3:
        raise UsageError(f"ab needs at least 3 rounds for its paired interval, got --rounds {rounds}")
    # no early stop on a narrow interval: a side that stopped early would pair fewer rounds
    per_pair = [pair_rounds(c, rounds) for c in plan_a.cells]
    plan_a, plan_b = with_rounds(plan_a, per_pair), with_rounds(plan_b, per_pair)
    once = [c.label for c in plan_a.cells + plan_b.cells if planned_rounds(c) < 2]
    if once:
        raise UsageError(f"ab pairs rounds, and {once[0]}'s scenario is measured once (only latency and "
                         "throughput cells pool rounds)")
    b_env_extra = check_python(python_b) if python_b else {}
    extra_env = {"TRNBENCH_WORKER_MEMORY_GB": str(worker_memory_gb)} if worker_memory_gb else {}
    env_a = host_env.capture(instance)
    env_b = environment_of(python_b, b_env_extra, instance)
    root = Path(out) / f"ab-{new_run_id()}"
    try:
        root.mkdir(parents=True)
    except OSError as exc:
        raise UsageError(f"cannot create {root}: {exc.strerror or exc}") from None
    store_a = RunStore.create(root, {**plan_a.to_dict(), "side": "a"}, env_a, run_id="a")
    store_b = RunStore.create(root, {**plan_b.to_dict(), "side": "b", "b_flags": b_flags,
                                     "python_b": python_b}, env_b, run_id="b")
    (root / "ab.json").write_text(json.dumps({"a": "a", "b": "b", "pairs": len(plan_a.cells), "b_flags": b_flags,
                                              "python_b": python_b}, indent=1))
    locks = [store_a.lock(), store_b.lock()]
    order = sorted(range(len(plan_a.cells)), key=lambda i: _group_rank(plan_a)[plan_a.cells[i].worker_group()])
    units, pairs = [], []
    for i in order:  # every pair back to back, A B in even rounds and B A in odd ones
        a = Unit(plan_a.cells[i], store_a, side=store_a.run_id)
        b = Unit(plan_b.cells[i], store_b, side=store_b.run_id, python=python_b, spawn_env=b_env_extra)
        units += [a, b]
        pairs.append((a, b))
    try:
        with progress_bar(progress, sum(planned_rounds(u.cell) for u in units)) as bar:
            runner = CellRunner(units, bar, None, pairs)
            measurer = LocalMeasurer(units, {str(store_a.path): env_a, str(store_b.path): env_b}, cache_dir,
                                     extra_env, bar, rewarm=True)
            try:
                runner.run(measurer)
            except BaseException:
                measurer.kill()
                raise
            measurer.close()
    finally:
        for lock in locks:
            lock.close()
    return root, store_a.path, store_b.path


def _group_rank(plan: Plan) -> dict[tuple, int]:
    rank: dict[tuple, int] = {}
    for cell in plan.cells:
        rank.setdefault(cell.worker_group(), len(rank))
    return rank
