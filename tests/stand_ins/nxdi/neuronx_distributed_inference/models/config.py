"""TEST STAND-IN: NeuronConfig and InferenceConfig (see the package docstring).

Like the real NeuronConfig.__init__(self, **kwargs) (models/config.py @ 4bcdc54), it pops the
keys it knows and only logs a warning for the rest: "NeuronConfig init: Unexpected keyword
arguments: {kwargs}". It knows a subset of the real keys: the ones trnbench sets plus a few.
"""

from __future__ import annotations

import logging


class NeuronConfig:
    def __init__(self, **kwargs):
        self.kwargs = dict(kwargs)
        self.tp_degree = kwargs.pop("tp_degree", 1)
        self.batch_size = kwargs.pop("batch_size", 1)
        self.seq_len = kwargs.pop("seq_len", 128)
        self.max_context_length = kwargs.pop("max_context_length", self.seq_len)
        self.max_length = kwargs.pop("max_length", self.seq_len)
        self.torch_dtype = kwargs.pop("torch_dtype", None)
        self.enable_bucketing = kwargs.pop("enable_bucketing", False)
        self.on_device_sampling_config = kwargs.pop("on_device_sampling_config", None)
        self.logical_nc_config = kwargs.pop("logical_nc_config", 1)
        if kwargs:
            logging.warning(f"NeuronConfig init: Unexpected keyword arguments: {kwargs}")


class InferenceConfig:
    def __init__(self, neuron_config: NeuronConfig, load_config=None, **kwargs):
        self.neuron_config = neuron_config
        if load_config is not None:
            load_config(self)
        self.__dict__.update(kwargs)
