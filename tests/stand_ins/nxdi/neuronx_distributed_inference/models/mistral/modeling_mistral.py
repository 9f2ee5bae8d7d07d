"""TEST STAND-IN: MistralInferenceConfig and NeuronMistralForCausalLM.

Mistral has its own classes in NxD Inference (models/mistral/modeling_mistral.py @ 4bcdc54;
utils/constants.py MODEL_TYPES "mistral": NeuronMistralForCausalLM); here they run the
checkpoint on CPU exactly as the llama stand-in does.
"""

from __future__ import annotations

from neuronx_distributed_inference.models.config import InferenceConfig
from neuronx_distributed_inference.models.llama.modeling_llama import NeuronLlamaForCausalLM


class MistralInferenceConfig(InferenceConfig):
    pass


class NeuronMistralForCausalLM(NeuronLlamaForCausalLM):
    pass
