"""The target protocol: what every backend (cpu, cuda, neuron, endpoint, a plug-in) implements.

A target declares what it can time (`verbs`: an inference call, LLM generation, a streamed
HTTP request, a training step; bench.targets.requests), its accelerator `kind`, and what a
cell needs on Ray (`ray_need`). A verb it lacks is refused by the target itself, in one line
(`verb_for`); nothing elsewhere branches on a target's name.

Two sides:
- orchestrator side (no torch import): `availability`, `check_compiler`, `resolve`,
  `worker_env`, `start_method`, `session` (what must run around a plan's cells: a server);
- worker side (inside a worker process): `setup_process`, `describe`, `configure_cell`,
  `prepare` (compile or load from the cache, returns a callable), `sync`, `thread_context`,
  `requests(verb)` (how a request of that verb is issued and summarised).

A compiler listed in `saved_compilers` produces an on-disk artifact: `compile_artifact`
writes it into a fresh directory, `load_artifact` loads it; the base class caches it
(bench.targets.cache) under a key of everything that changes the artifact. Other compilers build their
callable in `wrap` (eager, torch.compile).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets.cache import get_or_build
from bench.targets.requests import VERBS

INSTANCE = "instance:"  # Ray custom resource prefix: a node advertises "instance:<type>"


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""


@dataclass
class Prepared:
    """A ready-to-call model: `fn(*inputs)` runs one request on the target."""

    fn: Callable[..., Any]
    inputs: tuple
    compile_s: float | None = None
    load_s: float = 0.0
    cache_hit: bool | None = None
    artifact: str | None = None


@dataclass(frozen=True)
class Need:
    """What a cell asks Ray for: CPUs, GPUs, other resources (NeuronCores, an instance type,
    a plug-in accelerator's own), and whether it must run on the driver's node (a server
    on the driver's loopback)."""

    num_cpus: float
    num_gpus: float = 0
    resources: dict[str, float] = field(default_factory=dict)
    on_driver: bool = False

    @property
    def accelerated(self) -> bool:
        return self.num_gpus > 0 or any(not k.startswith(INSTANCE) for k in self.resources)

    def options(self) -> dict[str, Any]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "resources": dict(self.resources)}

    def fits(self, node: dict[str, float]) -> bool:
        return (node.get("CPU", 0) >= self.num_cpus and node.get("GPU", 0) >= self.num_gpus
                and all(node.get(k, 0) >= v for k, v in self.resources.items()))

    def describe(self) -> str:
        parts = [f"{self.num_cpus:g} CPU"]
        if self.num_gpus:
            parts.append(f"{self.num_gpus:g} GPU")
        parts += [f"{v:g} {k}" for k, v in sorted(self.resources.items())]
        return ", ".join(parts)


class Target:
    name: ClassVar[str] = ""
    # what it can time (bench.targets.requests.VERBS), and the accelerator it runs on (cpu,
    # cuda, neuron, http for a server, or a plug-in's own kind)
    verbs: ClassVar[tuple[str, ...]] = ("infer",)
    kind: ClassVar[str] = "cpu"
    # Ray: the resource one model copy takes (GPU, neuron_cores, a plug-in accelerator's custom
    # resource; None: CPUs only) and how many threads of the host each request thread uses
    ray_resource: ClassVar[str | None] = None
    # the model is a card (built here); False: a name the system under test serves
    needs_card: ClassVar[bool] = True
    # the type of the options only this target reads (Cell.options), if it has any
    options_type: ClassVar[type | None] = None
    # its `sync` is the base's no-op (set for every subclass): a timed loop skips the call
    sync_is_noop: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.sync_is_noop = cls.sync is Target.sync
    compilers: ClassVar[tuple[str, ...]] = ()
    # train verb: the compilers a training step runs under
    train_compilers: ClassVar[tuple[str, ...]] = ()
    saved_compilers: ClassVar[tuple[str, ...]] = ()
    # compilers that compile on the first call (torch.compile): prepare makes that call and
    # records it as compile_s, so first_call_ms is the first call of the compiled model
    lazy_compilers: ClassVar[tuple[str, ...]] = ()
    dtypes: ClassVar[tuple[str, ...]] = ("fp32", "bf16")
    # How worker processes start. forkserver forks from a server that has imported torch
    # (never a Neuron runtime), so start-up is paid once per run; spawn is a fresh interpreter.
    start_method: ClassVar[str] = "forkserver"

    # -- orchestrator side -----------------------------------------------------------------

    def availability(self) -> Availability:
        return Availability(True)

    def check_compiler(self, compiler: str) -> None:
        if compiler not in self.compilers:
            raise UsageError(
                f"unknown compiler {compiler!r} for target {self.name} (choose from {', '.join(self.compilers)})"
            )

    def default_compiler(self) -> tuple[list[str], str]:
        """The compiler a cell gets when none is asked for, and why (recorded in target_notes)."""
        return [self.compilers[0]], ""

    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        """Row columns a target knows about a cell at plan time (no SDK import)."""
        return {}

    def resolve(self, cell: Cell) -> Cell:
        """Fill defaults (n_models, workers, threads) and validate the cell for this target."""
        if cell.dtype not in self.dtypes:
            raise UsageError(f"target {self.name} does not support dtype {cell.dtype} (choose from {', '.join(self.dtypes)})")
        if cell.dp is not None:  # a training cell (bench.targets.train)
            self.check_train(cell)
        # what the scenario left open (0): one copy, one request in flight each
        return replace(cell, n_models=cell.n_models or 1, workers_per_model=cell.workers_per_model or 1)

    def verb_for(self, scenario) -> str:
        """The verb this target times under `scenario` (the first of the scenario's verbs it
        has); UsageError in one line when it has none of them."""
        for verb in scenario.verbs:
            if verb in self.verbs:
                return verb
        wanted = " or ".join(VERBS.get(v, v) for v in scenario.verbs)
        offers = ", ".join(VERBS.get(v, v) for v in self.verbs)
        raise UsageError(f"target {self.name} cannot time {wanted} (the {scenario.name} scenario's load): "
                         f"it times {offers}")

    def requests(self, verb: str):
        """How a request of `verb` is issued and summarised (bench.targets.requests.Requests)."""
        if verb == "infer":
            from bench.targets.infer import INFER

            return INFER
        if verb == "train" and verb in self.verbs:  # a training step on the worker's device
            from bench.targets.train import TRAIN

            return TRAIN
        if verb == "generate" and verb in self.verbs:  # transformers' generate on the worker's model
            from bench.targets.generate import GENERATE

            return GENERATE
        raise UsageError(f"target {self.name} has no requests of kind {verb!r}")

    def ray_need(self, cell: Cell, on: str | None, nodes: list[dict[str, float]]) -> Need:
        """What the cell asks Ray for, given the live nodes' totals: one unit of
        `ray_resource` per model copy (up to what a node has), and all the CPUs of the smallest
        node that can take it (and has at least the CPUs its threads use), so a node measures
        one cell at a time, as the local executor does; `on` adds one unit of `instance:<on>`
        (capacity 1 per node: exclusive again)."""
        n, w = max(1, cell.n_models), max(1, cell.workers_per_model)
        eligible = [r for r in nodes if not on or r.get(INSTANCE + on, 0) >= 1]
        resources: dict[str, float] = {INSTANCE + on: 1} if on else {}
        gpus = 0
        if self.ray_resource == "GPU":
            most = max((int(r.get("GPU", 0)) for r in eligible), default=0)
            gpus = max(1, min(n, most))
        elif self.ray_resource:
            resources[self.ray_resource] = n
        host = n * w * (cell.threads_per_worker or 1) if self.ray_resource is None else n * w
        sizes = sorted(int(r.get("CPU", 0)) for r in eligible if Need(1, gpus, resources).fits(r))
        big_enough = [n_cpus for n_cpus in sizes if n_cpus >= host]
        cpus = big_enough[0] if big_enough else (sizes[-1] if sizes else host)  # no node: skipped anyway
        return Need(max(1, cpus), gpus, resources)

    def on_ray_ids(self, ids: list[str]) -> Target:
        """This target in a Ray task that was assigned these accelerators (of `ray_resource`):
        by default as it is (Ray sets the visible devices itself, e.g. CUDA_VISIBLE_DEVICES)."""
        return self

    @contextlib.contextmanager
    def session(self, cells: list[Cell], out: Path, run_id: str, timeout_s: float | None) -> Iterator[list[Cell]]:
        """Around a plan's cells of this target, before anything is written: start what they
        need and check it answers (a server), yielding the cells as they then are."""
        yield cells

    def adopt(self, out: Path, run_id: str) -> None:
        """Once the run directory exists: move in what `session` kept beside it (a server's log)."""

    def options_from_dict(self, data: dict[str, Any]):
        """This target's options (Cell.options) from run.json's record of them."""
        return None

    def worker_env(self, cell: Cell, model_index: int) -> dict[str, str]:
        """Environment set in the worker before any SDK import."""
        return {}

    def accuracy_dtype(self, cell: Cell) -> str:
        """The precision whose tolerance judges this cell's outputs (a compiler may cast down)."""
        return cell.dtype

    def watch(self, cell: Cell):
        """A device monitor for the measurement (an object with `stop() -> dict of row columns`), or None."""
        return None

    def profile_env(self, cell: Cell, out_dir: Path) -> dict[str, str] | None:
        """`--profile`: the environment a profiled pass needs in a worker of its own, set before
        any SDK import (Neuron's runtime capture); None: the cell's own worker runs the pass
        under `profiler`."""
        return None

    def profile_summary(self, cell: Cell, out_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
        """After the profiled pass's worker is done: what the capture's own tools say (Neuron:
        neuron-explorer's summary); by default the worker's summary as it is."""
        return summary

    # -- worker side -------------------------------------------------------------------------

    def setup_process(self, model_index: int) -> None:
        """Called once when a worker process starts."""

    def describe(self) -> dict[str, Any]:
        """Accelerator facts for the result row (called inside a worker)."""
        return {}

    def versions(self) -> dict[str, str]:
        """Software versions that change compiled artifacts (part of the cache key)."""
        import torch

        return {"torch": torch.__version__}

    def configure_cell(self, cell: Cell) -> None:
        """Per-cell process settings (e.g. CPU threads)."""

    def thread_context(self):
        """Entered by each request-issuing thread (torch's grad mode is thread-local)."""
        import torch

        return torch.inference_mode()

    def sync(self) -> None:
        """Wait until the device has finished the request (no-op on CPU)."""

    def profiler(self, cell: Cell, out_dir: Path):
        """What captures a profiled pass (bench.targets.profiling): torch.profiler on the CPU."""
        from bench.targets.profiling import TorchCapture

        return TorchCapture(out_dir, "cpu")

    # -- worker side: a training step (bench.targets.train_step) -----------------------------

    def check_train(self, cell: Cell) -> None:
        """Refuse, in one line, a training cell this target cannot run: an inference-only
        compiler, a precision it does not have, more ranks than the host holds."""
        if cell.compiler not in self.train_compilers:
            raise UsageError(f"{cell.compiler} on {cell.target} is inference-only: "
                             f"a training step runs under {', '.join(self.train_compilers) or 'no compiler of this target'}")
        if cell.precision == "auto-cast" and self.kind != "neuron":
            raise UsageError(f"--precision auto-cast is the Neuron compiler's: use fp32, amp-bf16 or bf16 on {cell.target}")
        capacity, what = self.dp_capacity() if (cell.dp or 1) > 1 else (1, "")
        if capacity is not None and (cell.dp or 1) > capacity:
            raise UsageError(f"--dp {cell.dp} is more ranks than this host has {what} ({capacity})")
        self.check_train_stack(cell)

    def check_train_stack(self, cell: Cell) -> None:
        """The software a training step needs here (Neuron: TorchNeuron, or XLA up to 2.29)."""

    def dp_capacity(self) -> tuple[int | None, str]:
        """How many --dp ranks this host can hold, and what of (orchestrator side); None: unknown here."""
        return usable_cpus(), "CPU cores"

    def train_backend(self, cell: Cell) -> tuple[str, str]:
        """torch.distributed's backend and init method for --dp ranks."""
        return "gloo", "env://"

    def train_peak(self, cell: Cell) -> tuple[float | None, str]:
        """Dense peak TFLOP/s of the device one rank holds, at the cell's precision, and its
        source (bench.targets.peaks); (None, why) where none is known: a CPU's."""
        from bench.targets import peaks

        return peaks.per_device(self.kind, None, cell.precision or "fp32")

    def train_device(self, cell: Cell) -> str:
        """The torch device a training step runs on."""
        return "cpu"

    def train_compile(self, model, cell: Cell):
        """The model a training step calls: as it is (eager), or compiled (its backward too)."""
        if cell.compiler == "eager":
            return model
        import torch

        return torch.compile(model, backend="inductor", dynamic=False)

    def train_parallel(self, model, cell: Cell):
        """A data-parallel rank's model: DistributedDataParallel (gradients all-reduced in backward)."""
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def train_optimizer_step(self, optimizer, cell: Cell) -> None:
        optimizer.step()

    def train_step_end(self, cell: Cell) -> None:
        """After each optimizer step (XLA cuts and runs the step's graph here)."""

    def train_window_sync(self, cell: Cell) -> None:
        """At a measured window's edges: wait until the device has done every step queued."""
        self.sync()

    def train_compiles(self, cell: Cell) -> int | None:
        """Graphs compiled so far in this process (dynamo's counter), None when not counted."""
        if cell.compiler == "eager":
            return 0
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])

    def train_memory(self, cell: Cell) -> dict[str, float]:
        """Peak memory of the training process: the device's, or the host's resident set."""
        import resource

        return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    def step_timer(self, cell: Cell):
        """How steps are timed inside the window (bench.targets.train_step.HostTimer by default)."""
        from bench.targets.train_step import HostTimer

        return HostTimer()

    def place(self, module, inputs: tuple, cell: Cell):
        """Move a module (already in the cell's dtype) and inputs to the device."""
        return module, inputs

    def wrap(self, module, inputs: tuple, cell: Cell) -> Callable[..., Any]:
        """Callable for compilers without an on-disk artifact."""
        raise NotImplementedError(f"{self.name}: compiler {cell.compiler} not implemented")

    def compile_artifact(self, module, inputs: tuple, cell: Cell, workdir: Path) -> None:
        raise NotImplementedError

    def load_artifact(self, workdir: Path, cell: Cell) -> Callable[..., Any]:
        raise NotImplementedError

    def prepare(self, module, inputs: tuple, cell: Cell, cache_key: dict[str, Any] | None,
                cache_root: Path) -> Prepared:
        """Compile (or take from the cache) and load; times each step separately."""
        if cell.compiler not in self.saved_compilers:
            module, inputs = self.place(module, inputs, cell)
            t0 = time.perf_counter()
            fn = self.wrap(module, inputs, cell)
            load_s = time.perf_counter() - t0
            compile_s = None
            if cell.compiler in self.lazy_compilers:
                t0 = time.perf_counter()
                with self.thread_context():
                    fn(*inputs)
                    self.sync()
                compile_s = time.perf_counter() - t0
            return Prepared(fn=fn, inputs=inputs, compile_s=compile_s, load_s=load_s)
        key = dict(cache_key or {}, target=self.name, compiler=cell.compiler,
                   compiler_args=list(cell.compiler_args), dtype=cell.dtype, versions=self.versions())
        entry = get_or_build(cache_root, self.name, key if cache_key is not None else None,
                                   lambda d: self.compile_artifact(module, inputs, cell, d), name_key=key)
        _, inputs = self.place(None, inputs, cell)
        t0 = time.perf_counter()
        fn = self.load_artifact(entry.path, cell)
        load_s = time.perf_counter() - t0
        return Prepared(fn=fn, inputs=inputs, compile_s=entry.build_s, load_s=load_s, cache_hit=entry.hit,
                        artifact=str(entry.path))


def to_device(module, inputs: tuple, device: str):
    """Move a module (if any) and the inputs to a torch device."""
    if module is not None:
        module = module.to(device)
    return module, tuple(t.to(device) for t in inputs)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
