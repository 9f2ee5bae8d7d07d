"""Importable helpers for tests that need code inside worker processes.

Worker processes import these by name (a target "tests.support.plugins:PerturbedCpu", a
UserModel factory), so they live in a module importable as tests.support.plugins.
"""

from __future__ import annotations

from bench.targets.cpu import CpuTarget


class PerturbedCpu(CpuTarget):
    """The CPU target with a deliberately wrong compiled model: output + 0.5."""

    name = "perturbed-cpu"

    def wrap(self, module, inputs, cell):
        fn = super().wrap(module, inputs, cell)
        return lambda *args: fn(*args) + 0.5


class NanCpu(CpuTarget):
    """The CPU target whose compiled model returns NaN: the accuracy check must say so."""

    name = "nan-cpu"

    def wrap(self, module, inputs, cell):
        fn = super().wrap(module, inputs, cell)
        return lambda *args: fn(*args) * float("nan")


class ShapeCpu(CpuTarget):
    """The CPU target whose compiled model drops the last output column: a shape mismatch."""

    name = "shape-cpu"

    def wrap(self, module, inputs, cell):
        fn = super().wrap(module, inputs, cell)
        return lambda *args: fn(*args)[..., :-1]


class FailingCpu(CpuTarget):
    """The CPU target whose compiled model raises at every call: a failed row."""

    name = "failing-cpu"

    def wrap(self, module, inputs, cell):
        def fails(*args):
            raise RuntimeError("deliberate failure in the compiled model")

        return fails


class SlowSyncCpu(CpuTarget):
    """The CPU target with a device sync that takes 5 ms: a sync inside the timed region shows."""

    name = "slow-sync-cpu"

    def sync(self) -> None:
        import time

        time.sleep(0.005)


def small_mlp():
    """A user's own model: any nn.Module plus example inputs."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    return model, (torch.randn(2, 16),)


def _module(forward):
    import torch

    class Faulty(torch.nn.Module):
        def forward(self, x):
            return forward(x)

    return Faulty(), (torch.ones(1, 4),)


def raises():
    """A model whose forward raises."""

    def forward(x):
        raise RuntimeError("deliberate failure in forward")

    return _module(forward)


def aborts():
    """A model whose forward kills its process (SIGABRT, as a native crash would)."""
    import os

    def forward(x):
        os.abort()

    return _module(forward)


def hangs():
    """A model whose forward never returns."""
    import time

    def forward(x):
        time.sleep(3600)

    return _module(forward)


def hangs_with_a_child(pidfile: str):
    """A model whose first forward starts a long-lived child process (its pid written to
    `pidfile`) and then never returns (bind `pidfile` with functools.partial)."""
    import subprocess
    import sys
    import time

    def forward(x):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(pidfile, "w") as f:
            f.write(str(child.pid))
        time.sleep(3600)

    return _module(forward)


def allocates():
    """A model whose forward allocates far more memory than the worker may have (64 GiB)."""
    import torch

    def forward(x):
        return torch.ones(16 * 2**30, dtype=torch.float32).sum() + x

    return _module(forward)


# -- Ray executor tests (tests/e2e/test_ray.py): faults of the process that runs a cell -----------


def _flag(cell, name: str) -> str | None:
    """The value of `--name=VALUE` in the cell's compiler args (None when absent)."""
    for arg in cell.compiler_args:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


class DiesInRayTask(CpuTarget):
    """Starting the cell's workers kills the process starting them: the Ray task's own process,
    as when its node is lost mid-cell. With `--die-once=PATH`, only while PATH does not exist;
    with `--count=PATH`, each attempt first appends a line to PATH."""

    name = "dies-in-ray-task"

    def worker_env(self, cell, model_index):
        import os

        count = _flag(cell, "count")
        if count is not None:
            with open(count, "a") as f:
                f.write(f"{os.getpid()}\n")
        marker = _flag(cell, "die-once")
        if marker is not None:
            if os.path.exists(marker):
                return super().worker_env(cell, model_index)
            open(marker, "w").close()
        os._exit(3)


class StallsOnDoomedNode(CpuTarget):
    """On a Ray node advertising `instance:doomed`, starting the cell's workers touches
    `--stall-marker=PATH` and hangs (the test then removes the node); elsewhere, the CPU target."""

    name = "stalls-on-doomed-node"

    def worker_env(self, cell, model_index):
        import time

        import ray

        if "instance:doomed" in ray.get_runtime_context().get_assigned_resources():
            open(_flag(cell, "stall-marker"), "w").close()
            time.sleep(600)
        return super().worker_env(cell, model_index)


def activation_churn():
    """Allocates and frees 40 MiB a call, as a large batch's activations do.

    glibc's default never serves more than 32 MiB from its heap: each call maps fresh pages
    (10,240 page faults) and unmaps them again, whatever the process's history.
    """
    import torch

    class Churn(torch.nn.Module):
        def forward(self, x):
            return x + torch.ones(10 * 2**20)[:4]

    return Churn(), (torch.ones(4),)
