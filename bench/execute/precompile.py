"""`trnbench compile`: build the cached artifacts of a plan without measuring anything.

Each model group gets one spawned worker (the same process code as `run`, so the cache key
is computed exactly as `run` computes it) with TRNBENCH_COMPILE_ONLY=1: the target
compiles into the cache and does not load the artifact. On a host with no Neuron device
the neuron target compiles with `torch_neuronx.trace(..., cpu_backend=True)` and needs
`--target` in the compiler args, so artifacts can be built on a CPU instance and then
benchmarked on inf2 / trn1 with the same plan.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any

from bench import targets
from bench.execute.pool import WorkerDied, WorkerError, WorkerProcess, WorkerTimeout
from bench.paths import cache_dir as default_cache_dir
from bench.plan.cell import Cell, UserModel
from bench.plan.grid import Plan

COMPILE_TIMEOUT_S = 3 * 3600.0


def _artifact_key(cell: Cell) -> tuple:
    """Cells that share one compiled artifact (scenario, copies and workers do not matter)."""
    return (*cell.worker_group(), cell.batch_size, cell.seq_len, cell.image_size)


def compile_plan(plan: Plan, cache_dir: str | Path | None = None,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Compile every artifact the plan needs; returns one row per artifact."""
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir() / "artifacts"
    unique: dict[tuple, Cell] = {}
    for cell in plan.ordered():
        unique.setdefault(_artifact_key(cell), cell)
    cells = list(unique.values())
    by_target: dict[str, list[Cell]] = {}
    for c in cells:
        by_target.setdefault(c.target, []).append(c)
    for name, group in by_target.items():
        saved = [c for c in group if c.compiler in targets.get(name).saved_compilers]
        preflight = getattr(targets.get(name), "compile_preflight", None)
        if preflight is not None and saved:
            preflight(saved)
    rows: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    stop_event = ctx.Event()  # kept alive while workers run (the worker protocol takes one)
    for _, group in groupby(cells, key=Cell.worker_group):
        group = list(group)
        target = targets.get(group[0].target)
        proc = None
        try:
            for cell in group:
                row = {"model": cell.model_name, "target": cell.target, "compiler": cell.compiler,
                       "dtype": cell.dtype, "batch_size": cell.batch_size, "seq_len": cell.seq_len,
                       "image_size": cell.image_size, "compiler_args": " ".join(cell.compiler_args)}
                if isinstance(cell.model, UserModel):
                    row.update(status="skipped", error="a user's model is never cached (it may change under its name)")
                elif cell.compiler not in target.saved_compilers:
                    row.update(status="skipped", error=f"{cell.target}/{cell.compiler} builds no artifact "
                                                       "ahead of time (it compiles in the worker)")
                else:
                    if proc is None:
                        env = {**target.worker_env(cell, 0), "TRNBENCH_COMPILE_ONLY": "1"}
                        proc = WorkerProcess(ctx, cell.target, cell.model, 0, stop_event, env)
                    t0 = time.perf_counter()
                    try:
                        proc.send("prepare", {"cell": cell, "leader": False, "cache_root": str(cache_root)})
                        res = proc.recv(cell.measure.cell_timeout_s or COMPILE_TIMEOUT_S)
                    except WorkerError as exc:
                        row.update(status="failed", error=str(exc))
                    except (WorkerDied, WorkerTimeout) as exc:
                        proc.kill()
                        proc = None
                        row.update(status="failed", error=str(exc))
                    else:
                        row.update(status="cached" if res.cache_hit else "compiled",
                                   compile_s=res.compile_s, artifact=res.artifact, error="")
                    row["wall_s"] = round(time.perf_counter() - t0, 3)
                rows.append(row)
                if on_row:
                    on_row(row)
        finally:
            if proc is not None:
                proc.close()
    return rows
