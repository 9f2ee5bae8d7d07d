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
