"""TorchNeuron's training hooks call what its documentation says, in that order (no device:
tests/stand_ins/torchneuron's recording `torch.neuron`, and a recording `torch.compile`;
bench/targets/neuron/train.py cites each call)."""

from __future__ import annotations

import pytest
import torch

from bench.plan.cell import Cell
from bench.targets.neuron import NeuronTarget
from tests.stand_ins.torchneuron.recording_neuron import RecordingNeuron


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
