"""TEST STAND-IN: NeuronConfig and InferenceConfig (see the package docstring)."""

from __future__ import annotations


class NeuronConfig:
    def __init__(self, **kwargs):
        self.kwargs = dict(kwargs)
        self.tp_degree = 1
        self.batch_size = 1
        self.seq_len = 128
        self.max_context_length = None
        self.torch_dtype = None
        for key, value in kwargs.items():
            setattr(self, key, value)
        if self.max_context_length is None:
            self.max_context_length = self.seq_len
        self.max_length = self.seq_len


class InferenceConfig:
    def __init__(self, neuron_config: NeuronConfig, load_config=None, **kwargs):
        self.neuron_config = neuron_config
        if load_config is not None:
            load_config(self)
        self.__dict__.update(kwargs)
