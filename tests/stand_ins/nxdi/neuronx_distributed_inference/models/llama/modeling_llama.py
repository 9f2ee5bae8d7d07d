"""TEST STAND-IN: LlamaInferenceConfig and NeuronLlamaForCausalLM (see the package docstring)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import torch

from neuronx_distributed_inference import log
from neuronx_distributed_inference.models.config import InferenceConfig


class LlamaInferenceConfig(InferenceConfig):
    pass


class NeuronLlamaForCausalLM(torch.nn.Module):
    def __init__(self, model_path, config=None):
        super().__init__()
        if config is None:
            raise TypeError("stand-in: pass the InferenceConfig")
        self.model_path = str(model_path)
        self.config = config
        self.neuron_config = config.neuron_config
        self.kv_cache_populated = False
        self._hf = None
        self._seq = None

    def compile(self, compiled_model_path, debug=False) -> None:
        ckpt = Path(self.model_path)
        if not (ckpt / "config.json").is_file() or not any(ckpt.glob("model*.safetensors")):
            raise FileNotFoundError(f"stand-in: no HF checkpoint (config.json + model.safetensors) in {ckpt}")
        out = Path(compiled_model_path)
        out.mkdir(parents=True, exist_ok=True)
        (out / "neuron_config.json").write_text(json.dumps(self.neuron_config.kwargs, default=str))
        (out / "model.pt").write_bytes(b"stand-in")
        log("compile", path=str(out), neuron_config=self.neuron_config.kwargs, checkpoint=self.model_path)

    def load(self, compiled_model_path) -> None:
        path = Path(compiled_model_path)
        if not (path / "neuron_config.json").is_file():
            raise FileNotFoundError(f"stand-in: {path} holds no compiled model")
        from transformers import AutoModelForCausalLM

        dtype = self.neuron_config.torch_dtype or torch.float32
        self._hf = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype).eval()
        log("load", path=str(path), visible_cores=os.environ.get("NEURON_RT_VISIBLE_CORES"))

    def reset(self) -> None:
        self.kv_cache_populated = False
        self._seq = None
        log("reset")

    def forward(self, input_ids, attention_mask=None, position_ids=None, **kwargs):
        if self._hf is None:
            raise RuntimeError("stand-in: forward before load()")
        nc = self.neuron_config
        if input_ids.shape[0] != nc.batch_size:
            raise ValueError(f"stand-in: compiled for batch {nc.batch_size}, got {input_ids.shape[0]}")
        if not self.kv_cache_populated:
            if input_ids.shape[1] > nc.max_context_length:
                raise ValueError(f"stand-in: prompt {input_ids.shape[1]} > max_context_length {nc.max_context_length}")
            self._seq = input_ids
        else:
            self._seq = torch.cat([self._seq, input_ids], dim=-1)
        if self._seq.shape[1] > nc.seq_len:
            raise ValueError(f"stand-in: sequence {self._seq.shape[1]} > seq_len {nc.seq_len}")
        with torch.inference_mode():
            logits = self._hf(self._seq).logits[:, -1:, :].float()
        self.kv_cache_populated = True
        return SimpleNamespace(logits=logits)
