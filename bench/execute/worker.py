"""The worker process: builds the model once, compiles/loads it per cell, issues requests.

The orchestrator talks to a worker over a pipe with small messages:
  ("prepare", {"cell", "leader", "cache_root"})  -> a PrepareReport (compile/load, accuracy, first call)
  ("measure", {"cell", "leader", "start_ns"})    -> a MeasureReport (the scenario's raw arrays)
  ("profile", {"cell", "dir", "cache_root"})      -> the profiled pass's summary (bench.targets.profiling)
  ("close", None)
The cell's scenario does the work (bench.scenarios.base.Scenario.prepare / .measure), seeing
this process through `Worker`, its WorkerContext.
Replies are ("ok", result) or ("error", message, traceback). Workers start with `spawn`
or from a `forkserver` that has imported torch and transformers but never a Neuron
runtime, so the start-up cost is paid once per model group, not once per cell.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.plan.cell import Cell, UserModel
from bench.scenarios.base import MeasureReport, PrepareReport, WorkerContext


class Worker(WorkerContext):
    """The worker's state, as scenarios see it (bench.scenarios.base.WorkerContext)."""

    def __init__(self, target, model_ref: str | UserModel, index: int, stop_event, malloc_kept: bool | None):
        self.target = target
        self.model_ref = model_ref
        self.index = index
        self.stop_event = stop_event
        self.prepared = None  # Prepared of the last prepared cell
        self.malloc_kept = malloc_kept  # keep_freed_memory asked for: did mallopt take it?
        # (image_size, dtype) -> module; ("reference", shape...) -> fp32 output; "user_inputs"
        self.modules: dict[Any, Any] = {}
        self.by_cell: dict[str, tuple[Any, PrepareReport]] = {}  # cell_id -> (prepared, its report)
        self.requests = None  # the verb of the cell at hand (bench.targets.requests.Requests)
        self._described = False

    def module(self, cell: Cell, dtype: str = "fp32"):
        return _module(self, cell, dtype)

    def describe(self) -> dict[str, Any] | None:
        if self._described:
            return None
        import torch

        self._described = True
        facts = dict(self.target.describe())
        facts["torch_threads"] = torch.get_num_threads()
        return facts

    def prepare(self, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
        return _prepare(self, cell, leader, cache_root)


def main(conn: Connection, target_name: str, model_ref: str | UserModel, index: int, stop_event,
         env: dict[str, str]) -> None:
    """Worker entry point: apply the environment before any SDK import, then serve."""
    _own_process_group()
    os.environ.update(env)
    _limit_memory(env.get("TRNBENCH_WORKER_MEMORY_GB"))
    kept = keep_freed_memory() if env.get(KEEP_FREED_MEMORY_ENV) else None
    from bench import targets

    state = Worker(targets.get(target_name), model_ref, index, stop_event, malloc_kept=kept)
    state.target.setup_process(index)
    handlers = {"prepare": _prepare_for_scenario, "measure": _measure, "profile": _profile}
    while True:
        try:
            op, payload = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if op == "close":
            return
        try:
            conn.send(("ok", handlers[op](state, payload)))
        except BaseException as exc:  # noqa: B036 - every failure becomes the cell's error
            message = f"{type(exc).__name__}: {exc}".strip()
            conn.send(("error", message.splitlines()[0][:500], traceback.format_exc()))


def _own_process_group() -> None:
    """Lead a process group (so a kill takes compiler subprocesses too) and die with the parent."""
    try:
        os.setpgrp()
    except OSError:
        pass
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:  # PR_SET_PDEATHSIG = 1: SIGKILL when the parent (orchestrator/forkserver) dies
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass


KEEP_FREED_MEMORY_ENV = "TRNBENCH_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep what is freed: no trimming, every allocation from the heap.

    Without it, glibc gives memory back to the kernel as it is freed: allocations above a
    threshold (raised as they are freed, never past 32 MiB) are mapped and unmapped each
    time, and the top of the heap is trimmed whenever more than twice that is free. An
    eager model's next request faults those pages in again, so its latency depends on the
    heap's history. Returns False where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        return bool(libc.mallopt(m_trim_threshold, 1 << 30)) and bool(libc.mallopt(m_mmap_max, 0))
    except (OSError, AttributeError):  # musl has no mallopt
        return False


def _limit_memory(gib: str | None) -> None:
    """Cap the worker's address space so a runaway allocation fails as a MemoryError row."""
    if not gib:
        return
    import resource

    limit = int(float(gib) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _module(state: Worker, cell: Cell, dtype: str):
    """The fp32 eager module (built once per process and image size) or its dtype copy."""
    import copy

    from bench import models

    key = (cell.image_size, "fp32")
    if key not in state.modules:
        if isinstance(state.model_ref, UserModel):
            module, inputs = state.model_ref.factory()
            state.modules[key] = module.eval()
            state.modules["user_inputs"] = tuple(inputs)
        else:
            card = models.card(state.model_ref)
            state.modules[key] = models.build(card, cell.weights, image_size=cell.image_size)
    if dtype == "fp32":
        return state.modules[key]
    dkey = (cell.image_size, dtype)
    if dkey not in state.modules:
        state.modules[dkey] = copy.deepcopy(state.modules[key]).to(_torch_dtype(dtype))
    return state.modules[dkey]


def _torch_dtype(dtype: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]


def _inputs(state: Worker, cell: Cell) -> tuple:
    from bench import models

    if isinstance(state.model_ref, UserModel):
        return state.modules["user_inputs"]
    card = models.card(state.model_ref)
    return models.make_inputs(card, cell.batch_size, cell.seq_len, cell.image_size)


def _cache_key(state: Worker, cell: Cell, inputs: tuple) -> dict[str, Any] | None:
    if isinstance(state.model_ref, UserModel):
        return None  # a user's module can change without its name changing: never cached
    from importlib.metadata import version

    from bench import models

    card = models.card(state.model_ref)
    return {
        "card": card.name, "card_digest": card.digest, "weights": cell.weights,
        "inputs": [(tuple(t.shape), str(t.dtype)) for t in inputs],
        "transformers": version("transformers"),
    }


def _as_numpy(output):
    import numpy as np
    import torch

    tensors = [output] if isinstance(output, torch.Tensor) else [t for t in output if isinstance(t, torch.Tensor)]
    return np.concatenate([t.detach().float().cpu().numpy().ravel() for t in tensors])


def _prepare(state: Worker, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
    """Build (once), compile or load, check the leader's output against eager fp32, first call."""

    from bench.stats import accuracy

    target = state.target
    if state.malloc_kept is False:
        raise RuntimeError("keep_freed_memory needs glibc's mallopt (Linux); this C library has none")
    report = PrepareReport(ready_at=None if state._described else time.perf_counter())
    t0 = time.perf_counter()
    reference_module = _module(state, cell, "fp32")
    module = _module(state, cell, cell.dtype)
    inputs = _inputs(state, cell)
    # after the build: a model's own code may set torch's threads or TF32 when it is built
    target.configure_cell(cell)
    reference = None
    if leader:  # eager fp32 output, once per input shape (latency and throughput cells share it)
        report.model_fingerprint = _fingerprint(state, cell, reference_module)
        ref_key = ("reference", cell.batch_size, cell.seq_len, cell.image_size)
        if ref_key not in state.modules:
            state.modules[ref_key] = _reference(state, cell, reference_module, inputs, report.model_fingerprint)
        reference, report.reference_source = state.modules[ref_key]
    report.build_s = time.perf_counter() - t0
    cast = tuple(t.to(_torch_dtype(cell.dtype)) if t.is_floating_point() else t for t in inputs)
    state.prepared = None
    prepared = target.prepare(module, cast, cell, _cache_key(state, cell, cast), cache_root)
    with target.thread_context():
        t1 = time.perf_counter_ns()
        output = prepared.fn(*prepared.inputs)
        target.sync()
        report.first_call_ms = (time.perf_counter_ns() - t1) / 1e6
    state.prepared = prepared
    report.compile_s, report.load_s = prepared.compile_s, prepared.load_s
    report.cache_hit, report.artifact = prepared.cache_hit, prepared.artifact
    if leader:  # a target may compute in a coarser precision than the dtype (neuronx-cc --auto-cast)
        judged = accuracy.compare(reference, _as_numpy(output), target.accuracy_dtype(cell))
        report.max_abs_err, report.cosine = judged["max_abs_err"], judged["cosine"]
        report.accuracy_ok, report.accuracy_error = bool(judged["accuracy_ok"]), str(judged["accuracy_error"])
    report.device = state.describe()
    return report


def _fingerprint(state: Worker, cell: Cell, module) -> str:
    """The built weights' hash (bench.seeds.fingerprint), once per module."""
    from bench import seeds

    key = ("fingerprint", cell.image_size)
    if key not in state.modules:
        state.modules[key] = seeds.fingerprint(module)
    return state.modules[key]


def _reference(state: Worker, cell: Cell, module, inputs: tuple, fingerprint: str):
    """(eager fp32 output, where it came from): seeds/ when it holds this model at this shape
    (same weights fingerprint), else computed here."""
    import torch

    from bench import seeds

    if not isinstance(state.model_ref, UserModel):
        seed = seeds.load(str(state.model_ref))
        if (seed is not None and seed.output is not None and cell.weights == "random"
                and seed.matches(fingerprint, cell.batch_size, cell.seq_len, cell.image_size)):
            return seed.output.astype("float64").ravel(), "seeds"
    with torch.inference_mode():
        return _as_numpy(module(*inputs)), "computed"


def _prepare_for_scenario(state: Worker, payload: dict[str, Any]) -> PrepareReport:
    """The cell's scenario prepares, through its target's verb (by default `_prepare`; generate
    builds a generator; an endpoint client builds its prompts)."""
    from bench import scenarios
    from bench.scenarios import requests_of

    cell: Cell = payload["cell"]
    state.requests = requests_of(cell)
    if cell.cell_id in state.by_cell:  # measured before in this process (rounds, a re-measure)
        state.prepared, report = state.by_cell[cell.cell_id]
        return replace(report, ready_at=None, device=None)
    report = scenarios.of(cell).prepare(state, cell, payload["leader"], Path(payload["cache_root"]))
    if report.ready_at is None and report.device is not None:
        report.ready_at = time.perf_counter()
    state.by_cell[cell.cell_id] = (state.prepared, replace(report, ready_at=None, device=None))
    return report


def _measure(state: Worker, payload: dict[str, Any]) -> MeasureReport:
    from bench import scenarios
    from bench.scenarios import requests_of

    cell: Cell = payload["cell"]
    if state.prepared is None:
        raise RuntimeError("measure before prepare")
    state.requests = requests_of(cell)
    faults, cpu = minor_faults(), cpu_seconds()
    arrays = scenarios.of(cell).measure(state, cell, payload["leader"], payload.get("start_ns"))
    # a system under test in processes of its own on this host (a local server) is the cell's, not a neighbour
    sut = float(arrays.get("sut_cpu_s", 0.0))
    return MeasureReport(arrays=arrays, minor_faults=minor_faults() - faults, cpu_s=cpu_seconds() - cpu + sut)


def _profile(state: Worker, payload: dict[str, Any]) -> dict[str, Any]:
    """`--profile`: one untimed pass of the cell's requests under the target's profiler, after
    its measurement (prepared first where this process has not prepared it: a worker of its
    own, or a resumed run)."""
    from bench.scenarios import requests_of
    from bench.targets import profiling

    cell: Cell = payload["cell"]
    if cell.cell_id not in state.by_cell:
        _prepare_for_scenario(state, {"cell": cell, "leader": True, "cache_root": payload["cache_root"]})
    state.prepared = state.by_cell[cell.cell_id][0]
    state.requests = requests_of(cell)
    capture = state.target.profiler(cell, Path(payload["dir"]))
    return profiling.run_pass(capture, state.requests, state, cell)


def minor_faults() -> int:
    """Page faults served without I/O (mostly fresh pages for freed-and-reallocated memory)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def cpu_seconds() -> float:
    """This process's CPU time so far, every thread (user + system)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
