"""`--dp N`: one training cell on N data-parallel ranks, started by torch's elastic launcher.

Locally, the cell's worker calls `torch.distributed.launcher.api.elastic_launch` (the engine
behind `torchrun`) with a c10d rendezvous on 127.0.0.1 and bench.targets.train_rank as the
ranks' program; each rank joins the process group with its target's backend (gloo on CPU, nccl on
CUDA, TorchNeuron's `neuron`), wraps the model in DistributedDataParallel, and writes its
arrays to `rank<R>.npz` in the directory it was given. Rank 0 sets the measured step count
from its warm-up (the ranks all-reduce every step, so they must take the same number) and
every rank times the same window, synced at both ends and started after a barrier.

Across nodes the same program runs under torchrun, started alike on every node:

    torchrun --nnodes 2 --nproc-per-node 32 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m bench.targets.train_rank --cell cell.json --out DIR

where cell.json is `{"key": <a result row's key columns>, "measure": {...}}`
(torch/distributed/run.py documents the flags; HOST:29400 is any node's address).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bench.plan.cell import Cell

RDZV_TIMEOUT_S = 120


def launch(cell: Cell) -> list[dict[str, np.ndarray]]:
    """Every rank's arrays, rank 0 first (torch.distributed.launcher.api.elastic_launch)."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    with tempfile.TemporaryDirectory(prefix="trnbench-dp-") as tmp:
        spec = Path(tmp) / "cell.json"
        spec.write_text(json.dumps({"key": cell.key(), "measure": asdict(cell.measure)}))
        config = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=int(cell.dp or 1),
            logs_specs=DefaultLogsSpecs(log_dir=str(Path(tmp) / "logs")),  # gone with the directory
            run_id=f"trnbench-{cell.cell_id}-{os.getpid()}",
            # one node: the c10d store on loopback, on a port the OS picks (torchrun's
            # "--rdzv-endpoint=localhost:0" for stacked single-node runs, torch/distributed/run.py)
            rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0",
            rdzv_configs={"timeout": RDZV_TIMEOUT_S}, max_restarts=0, monitor_interval=0.1,
        )
        # a program (not a function): the ranks are subprocesses, which a daemonic worker may start
        elastic_launch(config, sys.executable)("-m", "bench.targets.train_rank", "--cell", str(spec), "--out", tmp)
        paths = sorted(Path(tmp).glob("rank*.npz"), key=lambda p: int(p.stem[4:]))
        if len(paths) != cell.dp:
            raise RuntimeError(f"{len(paths)} of {cell.dp} ranks wrote their results")
        return [dict(np.load(p, allow_pickle=False)) for p in paths]
