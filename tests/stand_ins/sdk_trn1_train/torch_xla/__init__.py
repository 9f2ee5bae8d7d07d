"""TEST STAND-IN for `torch_xla` (PyTorch/XLA 2.9, as Neuron 2.29's training flow uses it).
It is NOT PyTorch/XLA: tensors stay on the CPU and nothing is compiled. It follows the
documented calls so that trnbench's XLA training loop can be checked for what it calls and
in which order:

- `torch_xla.device()`: the XLA device (introducing-pytorch-2-9.rst: "end-of-support warning
  when using torch_xla.core.xla_model.xla_device(). Switch to torch_xla.device() instead.").
  The real one is `xla:0`; here the CPU, so the model runs.
- `torch_xla.sync()`: cuts the lazily traced graph, compiles it when it is new, and runs it
  (2.9's name for xm.mark_step: "Switch to torch_xla.sync() instead"). Here: a new graph is
  counted (metrics' CompileTime) on the first two syncs (step 1 creates the optimizer's state,
  so step 2's graph differs from it; later steps repeat step 2's), and again every
  $TRNBENCH_STANDIN_XLA_RECOMPILE_EVERY syncs when that is set (a shape that changes).
Every call is appended as one JSON line to $TRNBENCH_STANDIN_LOG when that is set.
"""

from __future__ import annotations

import json
import os

_state = {"syncs": 0, "compiles": 0}


def log(event: str, **fields) -> None:
    path = os.environ.get("TRNBENCH_STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n")


def device():
    import torch

    log("xla.device")
    return torch.device("cpu")


def sync(wait: bool = False) -> None:
    _state["syncs"] += 1
    every = int(os.environ.get("TRNBENCH_STANDIN_XLA_RECOMPILE_EVERY", "0") or 0)
    if _state["syncs"] <= 2 or (every and _state["syncs"] % every == 0):
        _state["compiles"] += 1
    log("xla.sync", n=_state["syncs"])
