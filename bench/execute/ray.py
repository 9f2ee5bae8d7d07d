"""Where a plan's cells run: here, one after another (the default), or as Ray tasks.

`local`: `bench.execute.local` runs the cells in this process's worker pools, one at a time.

`ray`: every round of every cell (times every instance type named with `on`) becomes one
Ray task that asks for what the cell's target says it needs (bench.targets.base.Target.ray_need:
NeuronCores for a neuron cell, GPUs for a cuda cell, a plug-in accelerator's own resource)
plus all the CPUs of the node it lands on, so that a node measures one cell at a time as the
local executor does; with `on`, also one unit of the custom resource `instance:<type>` that
each node advertises (`ray start --resources='{"instance:inf2.xlarge": 1}'`). Inside the task
the round is measured exactly as it is locally: `bench.execute.pool.WorkerPool` + `run_cell`
(spawned/forkserver workers, the same measurement), with the node's own compile cache and
environment columns (`bench.results.env.capture()` there). The rounds are passes over the
plan, as locally, and the one cell runner (bench.execute.runner) keeps each round as it comes
back (rounds.jsonl) and writes each row: a killed driver's run resumes with its kept rounds.

A Ray task whose process or node dies mid-cell, or that Ray's memory monitor kills, is
retried `retries` times by Ray (`max_retries`, and `RAY_task_oom_retries` for memory kills,
https://docs.ray.io/en/latest/ray-core/scheduling/ray-oom-prevention.html; application errors
are never retried), then recorded as a `failed` row with
the reason; the other cells go on. A cell that no live node can take (no such instance type,
or its last node died) is recorded instead of waiting for ever.

Ray is an optional extra (`pip install 'trnbench[ray]'`), imported only here, only when
the ray executor starts. Ray references:
  accelerators (neuron_cores, GPU, NEURON_RT_VISIBLE_CORES):
    https://docs.ray.io/en/latest/ray-core/scheduling/accelerators.html
  custom resources (instance:<type>): https://docs.ray.io/en/latest/ray-core/scheduling/resources.html
  retries and failures (max_retries, retry_exceptions, RayTaskError, WorkerCrashedError,
  NodeDiedError): https://docs.ray.io/en/latest/ray-core/fault_tolerance/tasks.html
  ray.init / ray.wait: https://docs.ray.io/en/latest/ray-core/api/doc/ray.init.html,
    https://docs.ray.io/en/latest/ray-core/api/doc/ray.wait.html
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.execute.cell import run_cell
from bench.execute.local import placed_on
from bench.execute.placement import INSTANCE, Need, need_for
from bench.execute.pool import WorkerPool
from bench.execute.progress import progress_bar
from bench.execute.rounds import measure_round, planned_rounds, round_cell
from bench.execute.runner import CellRunner, RoundResult, Unit
from bench.plan.cell import Cell
from bench.plan.grid import Plan
from bench.results.status import decide

RAY_EXTRA = "pip install 'trnbench[ray]'"
DEFAULT_RETRIES = 1


def _names(value) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(x).strip() for x in items if str(x).strip()]
    return names or None


# -- the Ray executor -----------------------------------------------------------------------------


class RayExecutor:
    """Every cell is a Ray task; rows stream back to this process, which records them.

    address: a Ray cluster ("auto", "HOST:6379", "ray://HOST:10001"); None: $RAY_ADDRESS, or
      else a new local Ray instance (on this machine only). If Ray is already initialised in
      this process, that connection is used (and left open).
    on: instance types; each cell is planned once per type, on a node advertising
      `instance:<type>`. None: any node that has the resources.
    retries: how often Ray re-runs a cell whose process or node died (default 1).
    num_cpus, resources: for a local instance only (e.g. tests: num_cpus=2).
    runtime_env: passed to ray.init (e.g. {"env_vars": {...}}).
    """

    name = "ray"
    pairs_control = False  # a cell's rounds run in one task: no control windows beside them (yet)

    def __init__(self, address: str | None = None, on=None, retries: int = DEFAULT_RETRIES, *,
                 num_cpus: int | None = None, resources: dict[str, float] | None = None,
                 runtime_env: dict[str, Any] | None = None, check_every_s: float = 5.0):
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise UsageError(f"--retries must be an integer >= 0, got {retries!r}")
        self.address = address
        self.on = _names(on)
        if self.on is not None:
            bad = [x for x in self.on if any(ch.isspace() for ch in x) or "@" in x]
            if bad:
                raise UsageError(f"--on: not an instance type: {bad[0]!r}")
            self.on = list(dict.fromkeys(self.on))
        self.retries = retries
        self.num_cpus = num_cpus
        self.resources = dict(resources or {})
        self.runtime_env = runtime_env
        self.check_every_s = check_every_s
        self.local = False  # every node is this machine (so they share its compile cache)
        self._owned = False
        self._driver: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, environment: dict[str, Any]) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError(f"--executor ray needs Ray, an optional extra: {RAY_EXTRA}") from None
        self._driver = {"host": socket.gethostname(), "instance": str(environment.get("instance_type") or "")}
        if ray.is_initialized():  # the caller's own connection: use it, leave it open
            self.local = _all_nodes_here()
            return
        address = self.address or os.environ.get("RAY_ADDRESS") or "local"
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": True, "logging_level": "warning"}
        if self.runtime_env:
            kwargs["runtime_env"] = self.runtime_env
        if address == "local":
            resources = dict(self.resources)
            if self._driver["instance"]:  # this machine is a node of its own instance type
                resources.setdefault(INSTANCE + self._driver["instance"], 1)
            kwargs.update(num_cpus=self.num_cpus, resources=resources or None)
        _check_reachable(address)
        # A task the memory monitor kills is retried without limit by default (Ray's
        # task_oom_retries = -1): a cell that really runs out of memory would never end. This
        # process owns the cells' tasks, and the owner's core worker reads RAY_task_oom_retries.
        os.environ.setdefault("RAY_task_oom_retries", str(self.retries))
        try:
            ray.init(address=address, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure to start or connect is one clear line
            what = "start a local Ray instance" if address == "local" else f"connect to the Ray cluster at {address}"
            text = str(exc).strip().splitlines()
            hint = "" if address == "local" else (" (a cluster with token authentication also needs "
                                                  "RAY_AUTH_MODE=token and its RAY_AUTH_TOKEN here)")
            raise UsageError(f"cannot {what}: {text[0] if text else type(exc).__name__}{hint}") from None
        self._owned = True
        self.local = _all_nodes_here()

    def stop(self) -> None:
        if self._owned:
            import ray

            ray.shutdown()
            self._owned = False

    def plan_meta(self) -> dict[str, Any]:
        """Recorded in run.json's plan, so `resume` places the cells the same way."""
        return {"executor": "ray", "on": list(self.on)} if self.on else {}

    def resume_from(self, meta: dict[str, Any], run_dir) -> None:
        recorded = placed_on(meta) or None
        if self.on is None:
            self.on = recorded
        elif self.on != recorded:
            raise UsageError(f"{run_dir} was run with --on {','.join(recorded) if recorded else '(none)'}: "
                             "resume it with the same instance types (or leave --on out)")

    # -- the sweep -------------------------------------------------------------------------------

    def run(self, plan: Plan, store, done: set[str], environment: dict[str, Any], cache_dir,
            progress: bool, on_row: Callable[[dict[str, Any]], None] | None,
            extra_env: dict[str, str]) -> Path:
        """Every cell (times every instance type of `on`) not in `done`, round by round through
        the one cell runner (bench.execute.runner): each round is a Ray task; the rounds and rows
        are written here, so a killed driver's run resumes its kept rounds as a local one does."""
        from bench.execute.local import plan_units
        from bench.paths import cache_dir as default_cache_dir

        if cache_dir is None and self.local:  # the nodes are this machine: share its cache
            cache_dir = default_cache_dir() / "artifacts"
        units: list[Unit] = []
        for on in self.on or [None]:
            units += plan_units(plan, store, done, on)[0]
        nodes = _live_nodes()
        with progress_bar(progress, sum(planned_rounds(u.cell) for u in units)) as bar:
            runner = CellRunner(units, bar, on_row)
            runner.resume()
            measurer = RayMeasurer(self, store.run_id, str(cache_dir) if cache_dir is not None else None,
                                   extra_env, bar, nodes)
            for unit in units:  # no live node can take it: a row that says so, nothing measured
                if unit.key not in runner.done and not any(measurer.need(unit).fits(r) for r in nodes):
                    runner.record(unit, 0, RoundResult(
                        decide({}, skipped=_why_not(unit.on, measurer.need(unit), nodes)), None,
                        environment={"instance_type": unit.on or ""}))
            try:
                runner.run(measurer)
            except BaseException:  # Ctrl-C or a bug: no cell keeps running on the cluster
                measurer.cancel()
                raise
        return store.path


class RayMeasurer:
    """Measures a pass's rounds as Ray tasks, all at once, and hands back each as it ends. A
    cell's later rounds prefer the node of its first (soft affinity): its row's host facts
    stay one node's. A task whose process or node died is retried by Ray, then its round is a
    `failed` result with the reason; a round no live node can take any more fails at once."""

    def __init__(self, executor: RayExecutor, run_id: str, cache: str | None, extra_env: dict[str, str], bar,
                 nodes: list[dict[str, float]]) -> None:
        import ray

        self.executor = executor
        self.run_id = run_id
        self.cache = cache
        self.extra_env = extra_env
        self.bar = bar
        self.nodes = nodes
        self.task = ray.remote(_round_task)
        self.pending: dict[Any, tuple[Unit, int]] = {}
        self.node_of: dict[tuple[str, str], str] = {}  # each unit's first node
        self._needs: dict[tuple[str, str], Need] = {}

    def need(self, unit: Unit) -> Need:
        if unit.key not in self._needs:
            self._needs[unit.key] = need_for(unit.cell, unit.on, self.nodes)
        return self._needs[unit.key]

    def measure(self, items: list[tuple[Unit, int]], runner: CellRunner) -> Iterator[tuple[Unit, int, RoundResult]]:
        import ray

        from bench import targets

        for unit, r in items:
            if not runner.wanted(unit):
                continue
            need = self.need(unit)
            keep_warm = not need.accelerated and targets.get(unit.cell.target).start_method == "forkserver"
            ref = self.task.options(**need.options(), **self._where(unit, need), max_retries=self.executor.retries,
                                    retry_exceptions=False, name=f"trnbench {unit.cell.label} r{r}"[:100]).remote(
                unit.cell, unit.on, self.cache, self.extra_env, keep_warm, self.executor._driver)
            self.pending[ref] = (unit, r)
            self.bar.show(unit.cell, r, planned_rounds(unit.cell))
        while self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=self.executor.check_every_s)
            if not ready:
                yield from self._unplaceable()
                continue
            unit, r = self.pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                error, detail = _ray_failure(exc, self.executor.retries)
                result = RoundResult(decide({"error_detail": detail}, failed=error), None,
                                     environment={"instance_type": unit.on or ""})
            node = result.row_extra.get("ray_node_id")
            if node:
                self.node_of.setdefault(unit.key, node)
            yield unit, r, result

    def _where(self, unit: Unit, need: Need) -> dict[str, Any]:
        """Where the round runs: on this node for a server on its loopback; near the unit's
        first round otherwise (soft: any node with the resources when that one is gone)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if need.on_driver:
            return _near_the_server(need)
        first = self.node_of.get(unit.key)
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(first, soft=True)} if first else {}

    def _unplaceable(self) -> Iterator[tuple[Unit, int, RoundResult]]:
        """Rounds no live node can take any more (their node died): failed, not waited for."""
        import ray

        nodes = _live_nodes()
        for ref, (unit, r) in list(self.pending.items()):
            need = self.need(unit)
            if not any(need.fits(node) for node in nodes):
                del self.pending[ref]
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
                yield unit, r, RoundResult(
                    decide({}, failed=f"ray: no live node offers {need.describe()} any more "
                                      "(its node died or left the cluster)"), None,
                    environment={"instance_type": unit.on or ""})

    def finished(self, unit: Unit) -> None:
        pass

    def end_round(self) -> None:
        pass

    def cancel(self) -> None:
        import ray

        for ref in self.pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self.pending = {}


def _near_the_server(need: Need) -> dict[str, Any]:
    """A cell whose target must be reached from this node (an endpoint on this host's loopback)
    runs on this node; other cells run wherever their resources are."""
    if not need.on_driver:
        return {}
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)}


def _why_not(on: str | None, need: Need, nodes: list[dict[str, float]]) -> str:
    """Why no node can take the cell, and what the nodes of its instance type do have."""
    msg = f"no node in the Ray cluster offers {need.describe()}"
    if not on:
        return msg
    typed = [r for r in nodes if r.get(INSTANCE + on, 0) >= 1]
    if not typed:
        return (f"{msg}: no node advertises {INSTANCE}{on} (start one with: ray start "
                f"--address=HEAD_IP:6379 --resources='{{\"{INSTANCE}{on}\": 1}}')")
    asked = sorted(k for k in need.resources if not k.startswith(INSTANCE))
    have = ", ".join(", ".join([f"{r.get('CPU', 0):g} CPU", f"{r.get('GPU', 0):g} GPU",
                                *[f"{r.get(k, 0):g} {k}" for k in asked]]) for r in typed[:3])
    return f"{msg}: the {on} nodes have {have}"


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (ray.init itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "local", "auto", "ray://..." are Ray's to resolve
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc} "
                         "(is `ray start --head` running there, and the port open?)") from None


def _all_nodes_here() -> bool:
    """Every live node is this machine (a local instance): the nodes can share its cache."""
    import ray

    here = socket.gethostname()
    return all(n.get("NodeManagerHostname") == here for n in ray.nodes() if n.get("Alive"))


def _live_nodes() -> list[dict[str, float]]:
    import ray

    return [dict(n.get("Resources") or {}) for n in ray.nodes() if n.get("Alive")]


def _ray_failure(exc: BaseException, retries: int) -> tuple[str, str]:
    """(error, detail) for a cell whose Ray task failed outside the cell's own code."""
    import ray.exceptions as rx

    tries = f" ({retries + 1} attempts)" if retries else ""
    if isinstance(exc, rx.NodeDiedError):
        what = "the node running the cell died"
    elif isinstance(exc, rx.OutOfMemoryError):
        what = "Ray's memory monitor killed the cell's process (node out of memory)"
    elif isinstance(exc, (rx.WorkerCrashedError, rx.LocalRayletDiedError)):
        what = "the process running the cell died (node lost, or the process was killed)"
    elif isinstance(exc, rx.ObjectLostError):
        what = "the cell's result was lost (its node died?)"
    elif isinstance(exc, rx.TaskCancelledError):
        what = "the cell's task was cancelled"
    elif isinstance(exc, rx.TaskUnschedulableError):
        what = f"the cell could not be scheduled: {exc}"
    elif isinstance(exc, rx.RuntimeEnvSetupError):
        what = "the Ray runtime environment could not be set up on the node"
    elif isinstance(exc, rx.RayTaskError):
        cause = getattr(exc, "cause", None) or exc
        text = str(cause).strip().splitlines()
        what = f"the cell's task raised {type(cause).__name__}: {text[-1] if text else ''}".rstrip(": ")
        tries = ""  # application errors are not retried
    else:
        what = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return f"ray: {what}{tries}"[:500], str(exc)[-4000:]


# -- inside the Ray task (on the node) -------------------------------------------------------------

_node_env: dict[str, Any] | None = None
_warm: tuple[tuple, Any, str] | None = None  # (key, WorkerPool, its last cell) kept between tasks of one Ray worker


def _environment(on: str | None, driver: dict[str, str]) -> dict[str, Any]:
    """This node's environment columns; the instance type from DMI, else the `on` it was placed by."""
    global _node_env
    from bench.results import env as host_env

    if _node_env is None:
        _node_env = host_env.capture()
    env = dict(_node_env)
    if not env.get("instance_type"):
        if on:
            env["instance_type"] = on  # the node advertises instance:<on>: the operator says so
        elif driver.get("host") == env.get("hostname"):
            env["instance_type"] = driver.get("instance", "")  # the driver's --instance-type, same host
    return env


def _close_warm() -> None:
    global _warm
    if _warm is not None:
        with contextlib.suppress(Exception):
            _warm[1].close()
        _warm = None


atexit.register(_close_warm)


def _round_task(cell: Cell, on: str | None, cache_dir: str | None, extra_env: dict[str, str],
                keep_warm: bool, driver: dict[str, str]) -> RoundResult:
    """One round of a cell on this node, as bench.execute.local measures one: its result and
    the facts of where it ran. A worker pool of the cell's group is kept between tasks of this
    Ray worker process (`keep_warm`), so a cell's next round here skips start-up."""
    global _warm

    import ray

    from bench import targets
    from bench.paths import cache_dir as default_cache_dir

    environment = _environment(on, driver)
    context = ray.get_runtime_context()
    node = {"ray_node_id": context.get_node_id()}
    target = targets.get(cell.target)
    availability = target.availability()
    if not availability.ok:
        return RoundResult(decide({}, skipped=f"target {cell.target} unavailable on "
                                              f"{environment.get('hostname')}: {availability.reason}"),
                           None, environment=environment, row_extra=node)
    ids = (context.get_accelerator_ids() or {}).get(target.ray_resource or "") or []
    if ids:  # the accelerators Ray assigned this task: the target places its copies on them
        target = target.on_ray_ids([str(i) for i in ids])
    key = (cell.worker_group(), tuple(sorted(extra_env.items())))
    if _warm is not None and (not keep_warm or _warm[0] != key):
        _close_warm()
    pool, last = (_warm[1], _warm[2]) if _warm is not None else (WorkerPool(target, cell.model, extra_env), None)
    _warm = None
    root = Path(cache_dir) if cache_dir else default_cache_dir() / "artifacts"
    extras: list[tuple[Cell, dict[str, Any], dict | None]] = []
    began = time.perf_counter()
    try:  # the same measurement as the local executor's (its round's share, busy retries)
        measured = round_cell(cell, "cold" if last != cell.cell_id else "rewarm")
        fields, samples = measure_round(lambda rec: run_cell(pool, measured, root, rec), cell,
                                        lambda c, f, s: extras.append((c, f, s)))
    except BaseException:
        pool.kill()
        raise
    result = RoundResult(fields, samples, extras, environment, dict(pool.device), node,
                         elapsed_s=time.perf_counter() - began)
    if keep_warm:
        _warm = (key, pool, cell.cell_id)  # the next round of this group in this process skips start-up
    else:
        pool.close()
    return result
