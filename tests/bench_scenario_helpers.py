"""Helpers the server / generate tests need inside worker processes (imported by name there).

- `sleepy_model`: a user model whose forward sleeps `SERVICE_S`: a server with a known,
  controllable service time (time.sleep releases the GIL, so k threads serve k / SERVICE_S
  requests per second).
- `NxdiOnCpu`: the CPU target with the compiler `nxdi` and the NxD Inference stand-in
  (tests/stand_ins/nxdi) on the worker's sys.path: the generate scenario's Neuron path,
  end to end through a worker, without Neuron hardware.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench.targets.cpu import CpuTarget

SERVICE_S = 0.010
NXDI_STAND_IN = str(Path(__file__).resolve().parent / "stand_ins" / "nxdi")


def sleepy_model():
    """A model that takes exactly SERVICE_S (plus the OS's sleep overshoot) per request."""
    import torch

    class Sleep(torch.nn.Module):
        def forward(self, x):
            time.sleep(SERVICE_S)
            return x + 1

    return Sleep(), (torch.zeros(1, 4),)


class NxdiOnCpu(CpuTarget):
    name = "nxdi-cpu"
    compilers = ("eager", "nxdi")

    def worker_env(self, cell, model_index: int) -> dict[str, str]:
        # forkserver children inherit the server's environment, not the test's: pass the log on
        log = os.environ.get("TRNBENCH_NXDI_STANDIN_LOG")
        return {"TRNBENCH_NXDI_STANDIN_LOG": log} if log else {}

    def setup_process(self, model_index: int) -> None:
        if NXDI_STAND_IN not in sys.path:
            sys.path.insert(0, NXDI_STAND_IN)
        super().setup_process(model_index)
