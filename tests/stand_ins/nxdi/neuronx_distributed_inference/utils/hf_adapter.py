"""TEST STAND-IN: load_pretrained_config and HuggingFaceGenerationAdapter (see the package docstring).

The adapter follows the real one (utils/hf_adapter.py @ 4bcdc54), in the parts trnbench
relies on:
- `generate()` calls `self.neuron_model.reset()` first ("Keep generation stateless");
- the decoding loop makes one `self(...)` call per generated token and no streamer call;
- with CPU sampling (`on_device_sampling_config` None) the logits processors apply, so
  `min_new_tokens` holds EOS back; with on-device sampling they do not;
- it stops when every sequence has produced an EOS token (transformers' EosTokenCriteria),
  padding finished rows; `eos_token_id=[]` switches that off (what NxD Inference's
  benchmark does for on-device sampling).
"""

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
        self.on_device_sampling = self.neuron_config.on_device_sampling_config is not None

    def forward(self, **kwargs):
        return self.neuron_model(**kwargs)

    def generate(self, input_ids, attention_mask=None, max_new_tokens=None, min_new_tokens=None,
                 generation_config=None, max_length=None, eos_token_id=None, pad_token_id=None, **kwargs):
        self.neuron_model.reset()
        if max_new_tokens is None:
            max_new_tokens = (max_length or self.neuron_config.max_length) - input_ids.shape[-1]
        if eos_token_id is None:
            eos_token_id = getattr(self.neuron_model.config.hf_config, "eos_token_id", None)
        eos = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
        pad = pad_token_id if pad_token_id is not None else (eos[0] if eos else 0)
        log("generate", batch=list(input_ids.shape), max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
            eos_token_id=eos, kwargs=sorted(kwargs))
        ids = input_ids
        unfinished = torch.ones(input_ids.shape[0], dtype=torch.bool)
        for step in range(max_new_tokens):
            cur = ids[:, -1:] if self.neuron_model.kv_cache_populated else ids
            out = self(input_ids=cur, attention_mask=attention_mask)
            scores = out.logits[:, -1, :].clone()
            if not self.on_device_sampling and min_new_tokens and step < min_new_tokens and eos:
                scores[:, eos] = -float("inf")  # MinNewTokensLengthLogitsProcessor
            next_tokens = scores.argmax(dim=-1)
            if eos:
                next_tokens = torch.where(unfinished, next_tokens, torch.full_like(next_tokens, pad))
            ids = torch.cat([ids, next_tokens[:, None]], dim=-1)
            if eos:
                unfinished &= ~torch.isin(next_tokens, torch.tensor(eos))
                if not unfinished.any():
                    break
        return ids
