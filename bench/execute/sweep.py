"""Run a plan: `run_plan` creates (or resumes) the run directory and hands the cells to an executor.

Executors: `local` (bench.execute.local, the default: here, one cell after another) or `ray`
(bench.execute.ray: each cell a Ray task). Both append rows to the same store, so a killed run
finishes with `resume` either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import targets
from bench.errors import UsageError
from bench.execute.local import LocalExecutor
from bench.plan.grid import Plan
from bench.results import env as host_env
from bench.results import prices
from bench.results.store import RunStore, new_run_id, read_meta


def run_plan(plan: Plan, out: str | Path = "results", *, resume: str | Path | None = None,
             cache_dir: str | Path | None = None, instance: str | None = None,
             progress: bool = True, on_row: Callable[[dict[str, Any]], None] | None = None,
             worker_memory_gb: float | None = None, executor=None, launch_timeout_s: float | None = None,
             price_per_hour: float | None = None) -> Path:
    """Run every cell of `plan` not yet recorded; returns the run directory.

    With `resume`, rows go to that run directory and cells it already holds are skipped.
    `worker_memory_gb` caps each worker's address space (a runaway allocation becomes a
    failed row instead of the OOM killer's target).
    `executor`: None or "local" runs the cells here, one after another; "ray" or a
    `bench.execute.ray.RayExecutor(...)` runs each cell as a Ray task.
    `price_per_hour` (dollars) prices every row's cost_per_1m_inf; without it the instance
    type's price comes from results/reference/instance-prices.csv where it is listed.
    Each target's `session` runs around its cells (the endpoint's: a `--launch` server started
    first, ready within `launch_timeout_s` (None: 600 s, or vLLM Neuron's compile timeout and a margin), every server checked before anything is written,
    and stopped at the end).
    """
    extra_env = {"TRNBENCH_WORKER_MEMORY_GB": str(worker_memory_gb)} if worker_memory_gb else {}
    _check_weights(plan)
    environment = host_env.capture(instance)
    if price_per_hour is not None:
        environment.update(prices.price_fields(environment.get("instance_type"), price_per_hour))
    runner = _executor(executor)
    if plan.control is not None and not getattr(runner, "pairs_control", False):
        raise UsageError(f"--control measures the control's windows beside each cell's, which the {runner.name} "
                         "executor does not do: run it with the local executor")
    if any(c.measure.profile for c in plan.cells) and not getattr(runner, "profiles", False):
        raise UsageError(f"--profile takes its pass in the measuring worker's own process, which the {runner.name} "
                         "executor does not reach: run it with the local executor")
    run_id = Path(resume).name if resume is not None else new_run_id()
    with contextlib.ExitStack() as stack:
        out_dir = Path(resume).parent if resume is not None else Path(out)
        plan = stack.enter_context(sessions(plan, out_dir, run_id, launch_timeout_s))
        if resume is not None:
            runner.resume_from(read_meta(Path(resume)), resume)  # a run placed per instance type needs Ray
            store = RunStore(Path(resume))
            stack.callback(store.lock().close)  # first: it repairs what a killed run left
            done = store.done_ids()
            runner.start(environment)  # after the lock: a refused resume starts nothing
            stack.callback(runner.stop)
        else:
            runner.start(environment)  # before the run directory: a bad address leaves nothing behind
            stack.callback(runner.stop)
            store = RunStore.create(out, {**plan.to_dict(), **runner.plan_meta()}, environment, run_id=run_id)
            done = set()
            stack.callback(store.lock().close)
        for name in sorted({c.target for c in plan.cells}):
            targets.get(name).adopt(store.path.parent, run_id)
        return runner.run(plan, store, done, environment, cache_dir, progress, on_row, extra_env)


@contextlib.contextmanager
def sessions(plan: Plan, out: Path, run_id: str, timeout_s: float | None):
    """Every target's session around its cells (bench.targets.base.Target.session): the plan,
    its cells as the sessions left them, while they all run."""
    from dataclasses import replace

    with contextlib.ExitStack() as stack:
        ready = {}
        for name in sorted({c.target for c in plan.cells}):
            mine = [c for c in plan.cells if c.target == name]
            for before, after in zip(mine, stack.enter_context(targets.get(name).session(mine, out, run_id, timeout_s))):
                ready[before.cell_id] = after
        yield replace(plan, cells=[ready.get(c.cell_id, c) for c in plan.cells])


def _executor(executor):
    if executor is None or executor == "local":
        return LocalExecutor()
    if executor == "ray":
        from bench.execute.ray import RayExecutor

        return RayExecutor()
    if isinstance(executor, str):
        raise UsageError("executor must be 'local' or 'ray'")
    return executor


def executor_from_args(args):
    """The executor the CLI flags ask for: None for local (the default)."""
    kind = getattr(args, "executor", None) or "local"
    address, on, retries = (getattr(args, "ray_address", None), getattr(args, "on", None),
                            getattr(args, "retries", None))
    if kind == "local":
        given = [flag for flag, v in (("--ray-address", address), ("--on", on), ("--retries", retries))
                 if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: only with --executor ray")
        return None
    from bench.execute.ray import DEFAULT_RETRIES, RayExecutor

    return RayExecutor(address=address, on=on, retries=DEFAULT_RETRIES if retries is None else retries)


def _check_weights(plan: Plan) -> None:
    from bench import models

    for name, weights in sorted({(c.model_name, c.weights) for c in plan.cells
                                 if c.weights != "random" and targets.get(c.target).needs_card}):
        models.check_weights(models.card(name), weights)
