"""Importable helpers for tests that need code inside worker processes.

Worker processes import these by name (a target "bench_test_plugins:PerturbedCpu", a
UserModel factory), so they live in a plain module on the tests' sys.path.
"""

from __future__ import annotations

from bench.targets.cpu import CpuTarget


class PerturbedCpu(CpuTarget):
    """The CPU target with a deliberately wrong compiled model: output + 0.5."""

    name = "perturbed-cpu"

    def wrap(self, module, inputs, cell):
        fn = super().wrap(module, inputs, cell)
        return lambda *args: fn(*args) + 0.5


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


def allocates():
    """A model whose forward allocates far more memory than the worker may have (64 GiB)."""
    import torch

    def forward(x):
        return torch.ones(16 * 2**30, dtype=torch.float32).sum() + x

    return _module(forward)
