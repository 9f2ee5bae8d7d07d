"""Worker processes, parent side: start, talk to over a pipe, wait for (sleeping), kill.

`WorkerPool` holds the processes of one model group (one per model copy), started on
demand from the target's start method: a forkserver that has imported torch and
transformers (never a Neuron runtime), or spawn. See bench.execute.worker for the child.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from multiprocessing.connection import wait
from typing import Any

from bench.execute.worker import KEEP_FREED_MEMORY_ENV, main
from bench.plan.cell import Cell, UserModel
from bench.targets import Target

PREPARE_TIMEOUT_S = 3600.0  # compiling a large model for Neuron can take many minutes
_preload_set = False


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


def _context(start_method: str):
    """The multiprocessing context; `fork` only from a process with no other thread (a thread
    holding a lock at the fork, a progress bar's or a Ray worker's gRPC, leaves the child stuck)."""
    global _preload_set
    if start_method == "fork" and threading.active_count() > 1:
        start_method = "spawn"
    ctx = mp.get_context(start_method)
    if start_method == "forkserver" and not _preload_set:
        # The server imports torch + transformers once; each worker forks from it.
        ctx.set_forkserver_preload(["bench.execute.preload"])
        _preload_set = True
    return ctx


class WorkerPool:
    """The worker processes of one model group (one per model copy), started on demand."""

    def __init__(self, target: Target, model_ref, extra_env: dict[str, str] | None = None,
                 python: str | None = None, spawn_env: dict[str, str] | None = None):
        self.target = target
        self.model_ref = model_ref
        self.extra_env = extra_env or {}
        # another environment's interpreter (trnbench ab --b-python): spawned with it
        self.python = python
        self.spawn_env = dict(spawn_env or {})  # set while starting such a worker (its PYTHONPATH)
        self.ctx = _context("spawn" if python else target.start_method)
        self.stop_event = self.ctx.Event()
        self.procs: list[WorkerProcess] = []
        self.device: dict[str, Any] = {}
        self.keep_freed_memory = False

    def ensure(self, cell: Cell) -> list[WorkerProcess]:
        keep = cell.measure.keep_freed_memory
        if self.procs and keep != self.keep_freed_memory:
            self.close()  # malloc's settings hold for a process's life: start afresh
        self.keep_freed_memory = keep
        while len(self.procs) < cell.n_models:
            i = len(self.procs)
            env = {**self.extra_env, **self.target.worker_env(cell, i)}
            if keep:
                env[KEEP_FREED_MEMORY_ENV] = "1"
            self.procs.append(self._start(cell, i, env))
        return self.procs[: cell.n_models]

    def own_process(self, cell: Cell, env: dict[str, str]) -> WorkerProcess:
        """A worker of its own for `cell` with `env` on top (a profiled pass whose runtime reads
        its capture settings at start). The pool's workers go first: the new one takes the
        devices they held; the next cell starts them again."""
        self.close()
        return self._start(cell, 0, {**self.extra_env, **self.target.worker_env(cell, 0), **env})

    def _start(self, cell: Cell, index: int, env: dict[str, str]) -> WorkerProcess:
        if not self.python:
            return WorkerProcess(self.ctx, cell.target, self.model_ref, index, self.stop_event, env)
        from multiprocessing import spawn

        # multiprocessing's spawn executable is process-wide: set it for this start only
        previous = spawn.get_executable()
        saved = {k: os.environ.get(k) for k in self.spawn_env}
        spawn.set_executable(self.python)
        os.environ.update(self.spawn_env)
        try:
            return WorkerProcess(self.ctx, cell.target, self.model_ref, index, self.stop_event, env)
        finally:
            spawn.set_executable(previous)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def close(self) -> None:
        for p in self.procs:
            p.close()
        self.procs = []

    def kill(self) -> None:
        for p in self.procs:
            p.kill()
        self.procs = []
