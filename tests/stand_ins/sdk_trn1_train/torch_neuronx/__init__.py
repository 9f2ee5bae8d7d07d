"""TEST STAND-IN for the PyTorch/XLA `torch_neuronx` of Neuron 2.29 (2.9.0.2.13.*), the last
release with PyTorch/XLA training (about-neuron/announcements/neuron2.x/
announce-no-support-pytorch-xla-training.rst). It is NOT the Neuron SDK.

Training in that flow goes through `torch_xla` (the stand-in beside this one); torch_neuronx
itself is imported for its XLA device plug-in. `trace` is here only so that the SDK probe
sees the XLA flow, as it would on a real host; it traces nothing.
"""

__version__ = "2.9.0.2.13.24727+standin"


def trace(func, example_inputs, *_, input_output_aliases=None, compiler_workdir=None, compiler_args=None,
          partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False, **kwargs):
    raise NotImplementedError("the trn1 training stand-in does not trace; tests/stand_ins/sdk does")
