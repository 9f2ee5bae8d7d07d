"""TEST STAND-IN for TorchNeuron's device module `torch.neuron` (torch-neuronx 2.13.3 / 2.14.3,
Neuron 2.33): it records which of its functions are called, in order, and answers with fixed
figures. It is NOT TorchNeuron and there is no `neuron` device behind it: tests put it in
place of `torch.neuron` and check the calls trnbench's training hooks make.

- `synchronize(device=None)`: "Wait for all kernels in all streams on a Neuron device to
  complete"; the allocator is asynchronous, so it comes before any memory statistic ("Always
  call torch.neuron.synchronize() before you read any memory statistic",
  torch/guides/memory-profiling-guide).
- `max_memory_allocated(device=None)`, `max_memory_reserved(device=None)`: bytes, as
  torch.cuda's (torch/reference/guidelines-memory-management: reserved >= allocated).
- `get_dynamo_metrics()`: one entry per graph torch.compile(backend="neuron") compiled
  (torch/compile/reference-torch-compile; the module's tests assert one entry after one compile).
"""

from __future__ import annotations

import types


class RecordingNeuron(types.SimpleNamespace):
    """`torch.neuron` as the hooks use it: each call appended to `calls`."""

    def __init__(self, allocated_mib: int = 3, reserved_mib: int = 4, graphs: int = 2):
        super().__init__(calls=[], allocated=allocated_mib * 2**20, reserved=reserved_mib * 2**20, graphs=graphs)

    def synchronize(self, device=None):
        self.calls.append("synchronize")

    def max_memory_allocated(self, device=None):
        self.calls.append("max_memory_allocated")
        return self.allocated

    def max_memory_reserved(self, device=None):
        self.calls.append("max_memory_reserved")
        return self.reserved

    def get_dynamo_metrics(self):
        self.calls.append("get_dynamo_metrics")
        return [object() for _ in range(self.graphs)]
