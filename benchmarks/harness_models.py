"""Models for benchmarking the harness itself (imported by worker processes)."""

from __future__ import annotations


def identity():
    """A module that returns its input: all that is left to time is the harness."""
    import torch

    class Identity(torch.nn.Module):
        def forward(self, x):
            return x

    return Identity().eval(), (torch.ones(1, 8),)
