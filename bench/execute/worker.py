"""The worker process: builds the model once, compiles/loads it per cell, issues requests.

The orchestrator talks to a worker over a pipe with small messages:
  ("prepare", {"cell", "leader", "cache_root"}) -> compile/load, accuracy, first call
  ("measure", {"cell", "leader"})               -> the scenario's raw sample arrays
  ("close", None)
Replies are ("ok", result) or ("error", message, traceback). Workers start with `spawn`
or from a `forkserver` that has imported torch and transformers but never a Neuron
runtime, so the start-up cost is paid once per model group, not once per cell.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from bench.spec import Cell, UserModel


class WorkerError(Exception):
    """The worker reported an exception; `detail` holds its traceback."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


class WorkerDied(Exception):
    """The worker process exited (crash, signal, out of memory)."""


class WorkerTimeout(Exception):
    """The worker did not answer within the allowed time."""


class WorkerProcess:
    """Parent-side handle of one worker process (one model copy)."""

    def __init__(self, ctx, target_name: str, model_ref: str | UserModel, index: int, stop_event,
                 env: dict[str, str]):
        self.index = index
        self.created = time.perf_counter()  # CLOCK_MONOTONIC: comparable with the worker's clock
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=main, args=(child, target_name, model_ref, index, stop_event, env),
                                name=f"trnbench-worker-{index}", daemon=True)
        self.proc.start()
        child.close()

    def send(self, op: str, payload: Any = None) -> None:
        try:
            self.conn.send((op, payload))
        except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
            raise WorkerDied(self._death()) from exc

    def recv(self, timeout_s: float) -> Any:
        """Wait (sleeping, not spinning) for the reply to the last request."""
        ready = wait([self.conn, self.proc.sentinel], timeout=timeout_s)
        if not ready:
            raise WorkerTimeout(f"timed out after {timeout_s:.0f} s")
        if self.conn in ready or self.conn.poll():
            try:
                reply = self.conn.recv()
            except (EOFError, ConnectionResetError, OSError) as exc:
                raise WorkerDied(self._death()) from exc
            if reply[0] == "ok":
                return reply[1]
            raise WorkerError(reply[1], reply[2])
        raise WorkerDied(self._death())

    def _death(self) -> str:
        self.proc.join(timeout=5)
        code = self.proc.exitcode
        if code is None:
            return "worker stopped answering"
        if code < 0:
            import signal

            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            hint = " (killed: out of memory?)" if name == "SIGKILL" else ""
            return f"worker died with signal {name}{hint}"
        return f"worker exited with status {code}"

    def close(self, timeout_s: float = 10.0) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(("close", None))
            except OSError:
                pass
            self.proc.join(timeout=timeout_s)
        self.kill()

    def kill(self) -> None:
        """Kill the worker and everything it started (its process group)."""
        if self.proc.is_alive():
            import signal

            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()


# -- child side ---------------------------------------------------------------------------


@dataclass
class _State:
    target: Any
    model_ref: str | UserModel
    index: int
    stop_event: Any
    modules: dict[Any, Any] = field(default_factory=dict)  # (image_size, dtype) -> module; ("reference", shape...) -> fp32 output
    current: Any = None  # Prepared of the last prepared cell
    described: bool = False
    malloc_kept: bool | None = None  # keep_freed_memory asked for: did mallopt take it?


def main(conn: Connection, target_name: str, model_ref: str | UserModel, index: int, stop_event,
         env: dict[str, str]) -> None:
    """Worker entry point: apply the environment before any SDK import, then serve."""
    _own_process_group()
    os.environ.update(env)
    _limit_memory(env.get("TRNBENCH_WORKER_MEMORY_GB"))
    kept = keep_freed_memory() if env.get(KEEP_FREED_MEMORY_ENV) else None
    from bench import targets

    state = _State(targets.get(target_name), model_ref, index, stop_event, malloc_kept=kept)
    state.target.setup_process(index)
    handlers = {"prepare": _prepare_for_scenario, "measure": _measure}
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


def _module(state: _State, cell: Cell, dtype: str):
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


def _inputs(state: _State, cell: Cell) -> tuple:
    from bench import models

    if isinstance(state.model_ref, UserModel):
        return state.modules["user_inputs"]
    card = models.card(state.model_ref)
    return models.make_inputs(card, cell.batch_size, cell.seq_len, cell.image_size)


def _cache_key(state: _State, cell: Cell, inputs: tuple) -> dict[str, Any] | None:
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


def _prepare(state: _State, payload: dict[str, Any]) -> dict[str, Any]:
    import torch

    from bench.analysis import accuracy

    cell: Cell = payload["cell"]
    leader: bool = payload["leader"]
    target = state.target
    if state.malloc_kept is False:
        raise RuntimeError("keep_freed_memory needs glibc's mallopt (Linux); this C library has none")
    result: dict[str, Any] = {} if state.described else {"ready_at": time.perf_counter()}
    target.configure_cell(cell)
    t0 = time.perf_counter()
    reference_module = _module(state, cell, "fp32")
    inputs = _inputs(state, cell)
    reference = None
    if leader:  # eager fp32 output, once per input shape (latency and throughput cells share it)
        ref_key = ("reference", cell.batch_size, cell.seq_len, cell.image_size)
        if ref_key not in state.modules:
            with torch.inference_mode():
                state.modules[ref_key] = _as_numpy(reference_module(*inputs))
        reference = state.modules[ref_key]
    module = _module(state, cell, cell.dtype)
    result["build_s"] = time.perf_counter() - t0
    cast = tuple(t.to(_torch_dtype(cell.dtype)) if t.is_floating_point() else t for t in inputs)
    state.current = None
    prepared = target.prepare(module, cast, cell, _cache_key(state, cell, cast),
                              _cache_root(payload))
    with target.thread_context():
        t1 = time.perf_counter_ns()
        output = prepared.fn(*prepared.inputs)
        target.sync()
        first_call_ms = (time.perf_counter_ns() - t1) / 1e6
    state.current = prepared
    result.update(compile_s=prepared.compile_s, load_s=prepared.load_s, first_call_ms=first_call_ms,
                  cache_hit=prepared.cache_hit, artifact=prepared.artifact)
    if leader:  # a target may compute in a coarser precision than the dtype (neuronx-cc --auto-cast)
        tol = target.accuracy_dtype(cell)
        result.update(accuracy.compare(reference, _as_numpy(output), tol))
    if not state.described:
        result["device"] = target.describe()
        result["device"]["torch_threads"] = torch.get_num_threads()
        state.described = True
    return result


def _cache_root(payload: dict[str, Any]):
    from pathlib import Path

    return Path(payload["cache_root"])


def _prepare_for_scenario(state: _State, payload: dict[str, Any]) -> dict[str, Any]:
    """`_prepare`, unless the cell's scenario prepares itself (generate: NxD Inference, HF generate)."""
    from bench import scenarios

    hook = scenarios.hook(payload["cell"].scenario, "worker_prepare")
    return hook(state, payload) if hook is not None else _prepare(state, payload)


def _measure(state: _State, payload: dict[str, Any]) -> dict[str, Any]:
    from bench import scenarios

    cell: Cell = payload["cell"]
    hook = scenarios.hook(cell.scenario, "worker_measure")  # server (open loop), generate
    faults = minor_faults()
    if hook is not None:
        result = hook(state, payload)
    else:
        prepared = state.current
        if prepared is None:
            raise RuntimeError("measure before prepare")
        result = scenarios.get(cell.scenario).run(prepared.fn, prepared.inputs, state.target, cell,
                                                  state.stop_event, payload["leader"])
    if isinstance(result, dict):
        result["minor_faults"] = minor_faults() - faults
    return result


def minor_faults() -> int:
    """Page faults served without I/O (mostly fresh pages for freed-and-reallocated memory)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
