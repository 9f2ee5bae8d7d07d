"""TEST STAND-IN: load_pretrained_config and HuggingFaceGenerationAdapter (see the package docstring)."""

from __future__ import annotations

import torch

from neuronx_distributed_inference import log


def load_pretrained_config(model_path_or_name=None, hf_config=None):
    def load_config(self) -> None:
        from transformers import AutoConfig

        if (model_path_or_name is None) == (hf_config is None):
            raise ValueError('Please provide only one of "model_path_or_name" or "hf_config"')
        config = AutoConfig.from_pretrained(model_path_or_name) if model_path_or_name else hf_config
        self.hf_config = config
        self.__dict__.update({k: v for k, v in config.to_dict().items() if k != "torch_dtype"})

    return load_config


class HuggingFaceGenerationAdapter(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.neuron_model = model
        self.neuron_config = model.config.neuron_config

    def forward(self, **kwargs):
        return self.neuron_model(**kwargs)

    def generate(self, input_ids, attention_mask=None, max_new_tokens=None, generation_config=None,
                 max_length=None, **kwargs):
        if max_new_tokens is None:
            max_new_tokens = (max_length or self.neuron_config.max_length) - input_ids.shape[-1]
        log("generate", batch=list(input_ids.shape), max_new_tokens=max_new_tokens,
            kwargs=sorted(kwargs))
        ids = input_ids
        for _ in range(max_new_tokens):
            step = ids[:, -1:] if self.neuron_model.kv_cache_populated else ids
            out = self(input_ids=step, attention_mask=attention_mask)
            next_tokens = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
            ids = torch.cat([ids, next_tokens], dim=-1)
        return ids
