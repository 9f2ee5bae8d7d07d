"""TorchNeuron's training hooks call what its documentation says, in that order (no device:
a recording stand-in for `torch.neuron` and `torch.compile`; bench/targets/neuron/train.py
cites each call). Runs without the SDK; the real thing is `neuron`-marked elsewhere."""

from __future__ import annotations

import types

import pytest
import torch

from bench.plan.cell import Cell
from bench.targets.neuron import NeuronTarget


class RecordingNeuron(types.SimpleNamespace):
    """What tests need of `torch.neuron` (torch/reference/api/torch-neuron-module; the memory
    functions as torch.cuda's, torch/guides/memory-profiling-guide)."""

    def __init__(self):
        super().__init__(calls=[])

    def synchronize(self, device=None):
        self.calls.append("synchronize")

    def max_memory_allocated(self, device=None):
        self.calls.append("max_memory_allocated")
        return 3 * 2**20

    def max_memory_reserved(self, device=None):
        self.calls.append("max_memory_reserved")
        return 4 * 2**20

    def get_dynamo_metrics(self):
        self.calls.append("get_dynamo_metrics")
        return [object(), object()]  # one entry per compiled graph


@pytest.fixture
def neuron(monkeypatch):
    fake = RecordingNeuron()
    monkeypatch.setattr(torch, "neuron", fake, raising=False)
    return fake


def _cell(compiler: str) -> Cell:
    return Cell(model="tiny-bert", target="neuron", compiler=compiler, scenario="train", grad_accum=1,
                optimizer="adamw", precision="amp-bf16", dp=1)


def test_memory_is_read_after_a_synchronize(neuron):
    mem = NeuronTarget().train_memory(_cell("native-eager"))
    assert neuron.calls == ["synchronize", "max_memory_allocated", "max_memory_reserved"]
    assert mem == {"peak_mem_allocated_mib": 3.0, "peak_mem_reserved_mib": 4.0}


def test_the_window_syncs_the_device_and_compiles_are_dynamo_metrics(neuron):
    target = NeuronTarget()
    target.train_window_sync(_cell("native-compile"))
    assert neuron.calls == ["synchronize"]
    assert target.train_compiles(_cell("native-compile")) == 2
    assert target.train_compiles(_cell("native-eager")) == 0  # eager compiles nothing
    assert target.train_device(_cell("native-eager")) == "neuron"
    assert target.train_backend(_cell("native-eager")) == ("neuron", "env://")
    assert target.train_backend(_cell("xla")) == ("xla", "xla://")


def test_native_compile_is_torch_compile_with_the_neuron_backend_and_fullgraph(monkeypatch):
    seen = {}

    def compile_(model, **kwargs):
        seen.update(kwargs)
        return model

    monkeypatch.setattr(torch, "compile", compile_)
    model = torch.nn.Linear(2, 2)
    assert NeuronTarget().train_compile(model, _cell("native-compile")) is model
    assert seen == {"backend": "neuron", "fullgraph": True}
    seen.clear()
    assert NeuronTarget().train_compile(model, _cell("native-eager")) is model and not seen
