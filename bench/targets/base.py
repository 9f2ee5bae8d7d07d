"""The target protocol: what every backend (cpu, cuda, neuron) implements.

Two sides:
- orchestrator side (no torch import): `availability`, `check_compiler`, `resolve`,
  `worker_env`, `start_method`;
- worker side (inside a worker process): `setup_process`, `describe`, `configure_cell`,
  `prepare` (compile or load from the cache, returns a callable), `sync`, `thread_context`.

A compiler listed in `saved_compilers` produces an on-disk artifact: `compile_artifact`
writes it into a fresh directory, `load_artifact` loads it; the base class caches it
(bench.targets.cache) under a key of everything that changes the artifact. Other compilers build their
callable in `wrap` (eager, torch.compile).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets.cache import get_or_build


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


class Target:
    name: ClassVar[str] = ""
    compilers: ClassVar[tuple[str, ...]] = ()
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
        # what the scenario left open (0): one copy, one request in flight each
        return replace(cell, n_models=cell.n_models or 1, workers_per_model=cell.workers_per_model or 1)

    def worker_env(self, cell: Cell, model_index: int) -> dict[str, str]:
        """Environment set in the worker before any SDK import."""
        return {}

    def accuracy_dtype(self, cell: Cell) -> str:
        """The precision whose tolerance judges this cell's outputs (a compiler may cast down)."""
        return cell.dtype

    def watch(self, cell: Cell):
        """A device monitor for the measurement (an object with `stop() -> dict of row columns`), or None."""
        return None

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
