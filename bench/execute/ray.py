"""Where a plan's cells run: here, one after another (the default), or as Ray tasks.

`local`: `bench.execute.local` runs the cells in this process's worker pools, one at a time.

`ray`: every cell (times every instance type named with `on`) becomes one Ray task that
asks for what the cell uses -- NeuronCores (`neuron_cores`) for a neuron cell, GPUs for a
cuda cell -- plus all the CPUs of the node it lands on, so that a node measures one cell at
a time as the local executor does; with `on`, also one unit of the custom resource
`instance:<type>` that each node advertises (`ray start --resources='{"instance:inf2.xlarge": 1}'`).
Inside the task the cell runs exactly as it does locally: `bench.execute.pool.WorkerPool` +
`run_cell` (spawned/forkserver workers, the same measurement), with the node's own
compile cache and the node's own environment columns (`bench.results.env.capture()` there). Rows
stream back to the driver as tasks finish (`ray.wait`) and are appended to the one results
directory, so a killed driver finishes the sweep with `--resume`.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.execute.cell import build_row, run_cell
from bench.execute.local import placed_on, progress_bar
from bench.execute.placement import INSTANCE, NEURON_CORES, Need, need_for, placed_id, target_kind
from bench.execute.pool import WorkerPool
from bench.execute.rounds import (
    combine,
    judge,
    measure_round,
    planned_rounds,
    round_cell,
    wants_more,
)
from bench.plan.cell import Cell
from bench.plan.grid import Plan

RAY_EXTRA = "pip install 'trnbench[ray]'"
DEFAULT_RETRIES = 1


def _names(value) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(x).strip() for x in items if str(x).strip()]
    return names or None


# -- what a cell asks Ray for ------------------------------------------------------------------


# -- the Ray executor -----------------------------------------------------------------------------


@dataclass
class _Placement:
    cell: Cell
    on: str | None
    need: Need

    @property
    def row_id(self) -> str:
        return placed_id(self.cell, self.on)


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
        import ray

        from bench import targets
        from bench.paths import cache_dir as default_cache_dir

        if cache_dir is None and self.local:  # the nodes are this machine: share its cache
            cache_dir = default_cache_dir() / "artifacts"
        cache = str(cache_dir) if cache_dir is not None else None
        nodes = _live_nodes()
        placements = [_Placement(cell, on, need_for(cell, on, nodes))
                      for cell in plan.ordered() for on in (self.on or [None])]
        placements = [p for p in placements if p.row_id not in done]
        task = ray.remote(_cell_task)
        pending: dict[Any, _Placement] = {}

        def record(p: _Placement, row: dict[str, Any], samples, main: bool = True) -> None:
            if p.on:  # one row per cell and instance type: the id says which
                row.update(cell_id=f"{row['cell_id']}@{p.on}", on_instance=p.on)
            row.update(timestamp=time.time())  # when the driver recorded it
            store.append(row, samples)
            if main:
                bar.advance(row)
            if on_row:
                on_row(row)

        with progress_bar(progress, len(placements)) as bar:
            try:
                for p in placements:
                    if not any(p.need.fits(r) for r in nodes):
                        record(p, self._row_without_node(p, store.run_id, "skipped", _why_not(p, nodes)), None)
                        continue
                    keep_warm = not p.need.accelerated and targets.get(p.cell.target).start_method == "forkserver"
                    ref = task.options(**p.need.options(), **_near_the_server(p.cell), max_retries=self.retries,
                                       retry_exceptions=False, name=f"trnbench {p.cell.label}"[:100]).remote(
                        p.cell, store.run_id, p.on, cache, extra_env, keep_warm, self._driver)
                    pending[ref] = p
                if pending:
                    bar.show(next(iter(pending.values())).cell)
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.check_every_s)
                    if not ready:
                        self._drop_unplaceable(pending, store.run_id, record)
                        continue
                    p = pending.pop(ready[0])
                    try:
                        row, samples, extra = ray.get(ready[0])
                    except ray.exceptions.RayError as exc:
                        error, detail = _ray_failure(exc, self.retries)
                        row, samples, extra = self._row_without_node(p, store.run_id, "failed", error), None, []
                        row["error_detail"] = detail
                    for extra_row, extra_samples in extra:
                        record(p, extra_row, extra_samples, main=False)
                    record(p, row, samples)
                    if pending:
                        bar.show(next(iter(pending.values())).cell)
            except BaseException:  # Ctrl-C or a bug: no cell keeps running on the cluster
                for ref in pending:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
                raise
        return store.path

    def _drop_unplaceable(self, pending: dict, run_id: str, record) -> None:
        """Cells that no live node can take any more (its node died): failed, not waited for."""
        import ray

        nodes = _live_nodes()
        for ref, p in list(pending.items()):
            if not any(p.need.fits(r) for r in nodes):
                del pending[ref]
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
                record(p, self._row_without_node(p, run_id, "failed",
                                                 f"ray: no live node offers {p.need.describe()} any more "
                                                 "(its node died or left the cluster)"), None)

    @staticmethod
    def _row_without_node(p: _Placement, run_id: str, status: str, error: str) -> dict[str, Any]:
        # No node reported its environment: only the instance type asked for is known.
        return build_row(p.cell, run_id, {"instance_type": p.on or ""}, fields={"status": status, "error": error})


def _near_the_server(cell: Cell) -> dict[str, Any]:
    """An endpoint cell whose URL is this host's loopback runs on this node (the only one that
    reaches it); other URLs run wherever the cell's resources are."""
    from bench.targets.endpoint import is_local

    if cell.endpoint is None or not is_local(cell.endpoint.url):
        return {}
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)}


def _why_not(p: _Placement, nodes: list[dict[str, float]]) -> str:
    """Why no node can take the cell, and what the nodes of its instance type do have."""
    msg = f"no node in the Ray cluster offers {p.need.describe()}"
    if not p.on:
        return msg
    typed = [r for r in nodes if r.get(INSTANCE + p.on, 0) >= 1]
    if not typed:
        return (f"{msg}: no node advertises {INSTANCE}{p.on} (start one with: ray start "
                f"--address=HEAD_IP:6379 --resources='{{\"{INSTANCE}{p.on}\": 1}}')")
    have = ", ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU, {r.get(NEURON_CORES, 0):g} {NEURON_CORES}"
                     for r in typed[:3])
    return f"{msg}: the {p.on} nodes have {have}"


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
_warm: tuple[tuple, Any] | None = None  # (key, WorkerPool) kept between tasks of one Ray worker


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


class _OnRayCores:
    """The neuron target, with each model copy on the NeuronCores Ray assigned to this task.

    Ray sets NEURON_RT_VISIBLE_CORES for the task; two cells sharing a node must not both
    pick the first free cores, so copy i gets the i-th block of Ray's cores.
    """

    def __init__(self, target, cores: list[str]):
        self._target = target
        self._cores = sorted(cores, key=int)

    def __getattr__(self, name: str):
        return getattr(self._target, name)

    def worker_env(self, cell: Cell, model_index: int) -> dict[str, str]:
        from bench.targets.neuron import CORE_ERROR_ENV

        env = dict(self._target.worker_env(cell, model_index))
        env.pop(CORE_ERROR_ENV, None)
        n = max(1, cell.n_models)
        each = max(1, len(self._cores) // n)
        block = self._cores[model_index * each:(model_index + 1) * each]
        if not block:
            env[CORE_ERROR_ENV] = f"Ray assigned {len(self._cores)} NeuronCore(s) for {n} model copies"
            return env
        ids = [int(c) for c in block]
        contiguous = ids == list(range(ids[0], ids[0] + len(ids)))
        env["NEURON_RT_VISIBLE_CORES"] = (f"{ids[0]}-{ids[-1]}" if contiguous and len(ids) > 1
                                          else ",".join(map(str, ids)))
        return env


def _cell_task(cell: Cell, run_id: str, on: str | None, cache_dir: str | None, extra_env: dict[str, str],
               keep_warm: bool, driver: dict[str, str]) -> tuple[dict[str, Any], dict | None, list]:
    """One cell on this node, as bench.execute.local runs it: (row, samples, extra rows)."""
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
        return build_row(cell, run_id, environment, fields={
            **node, "status": "skipped",
            "error": f"target {cell.target} unavailable on {environment.get('hostname')}: {availability.reason}"}), None, []
    cores = (context.get_accelerator_ids() or {}).get(NEURON_CORES) or []
    if cores and target_kind(target) == "neuron":
        target = _OnRayCores(target, cores)
    key = (cell.worker_group(), tuple(sorted(extra_env.items())))
    if _warm is not None and (not keep_warm or _warm[0] != key):
        _close_warm()
    pool = _warm[1] if _warm is not None else WorkerPool(target, cell.model, extra_env)
    _warm = None
    root = Path(cache_dir) if cache_dir else default_cache_dir() / "artifacts"
    extra: list[tuple[dict[str, Any], dict | None]] = []

    def record(c: Cell, fields: dict[str, Any], samples: dict | None) -> None:
        """A row for an extra measurement a scenario's `execute` made (server: each probe)."""
        extra.append((build_row(c, run_id, environment, pool.device, {**fields, **node}), samples))

    try:  # the same dispatch as the local executor; a task measures its cell's rounds back to back
        results: list[tuple[dict[str, Any], dict | None]] = []
        while not results or wants_more(cell, results):
            measured = round_cell(cell, "warm" if results else "cold")  # a task's rounds run back to back
            results.append(measure_round(lambda rec, m=measured: run_cell(pool, m, root, rec), cell, record))
        fields, samples = combine(cell, results)
        if planned_rounds(cell) > 1:
            fields = judge(cell, fields)
    except BaseException:
        pool.kill()
        raise
    row = build_row(cell, run_id, environment, pool.device, {**fields, **node})
    if keep_warm:
        _warm = (key, pool)  # the next cell of this group in this process skips start-up
    else:
        pool.close()
    return row, samples, extra

