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

from bench.targets.cpu import CpuTarget
from tests.support.paths import STAND_INS

SERVICE_S = 0.010
NXDI_STAND_IN = str(STAND_INS / "nxdi")


def sleepy_model():
    """A model that takes exactly SERVICE_S (plus the OS's sleep overshoot) per request."""
    import torch

    class Sleep(torch.nn.Module):
        def forward(self, x):
            time.sleep(SERVICE_S)
            return x + 1

    return Sleep(), (torch.zeros(1, 4),)



def _settings_checking_model(check):
    """A model whose build changes torch's process settings (as a model library's import or
    constructor may) and whose every call fails unless the harness set them back."""
    import torch

    torch.set_num_threads(2)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    class Checked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(16, 16)

        def forward(self, x):
            problem = check()
            if problem:
                raise RuntimeError(problem)
            return self.linear(x)

    return Checked(), (torch.ones(1, 16),)


def one_thread_model():
    """Fails unless it runs with 1 torch thread, though its build asked for 2."""
    import torch

    return _settings_checking_model(lambda: torch.get_num_threads() != 1 and f"{torch.get_num_threads()} threads")


def no_tf32_model():
    """Fails while TF32 is on for matmuls or cuDNN, though its build turned it on."""
    import torch

    def check():
        on = [n for n, v in (("matmul", torch.backends.cuda.matmul.allow_tf32),
                             ("cudnn", torch.backends.cudnn.allow_tf32)) if v]
        return on and f"TF32 on for {', '.join(on)}"

    return _settings_checking_model(check)

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

    def requests(self, verb: str):
        if verb == "generate":  # NxD Inference's generation, as the neuron target's
            from bench.targets.neuron.generate import NXDI_GENERATE

            return NXDI_GENERATE
        return super().requests(verb)
