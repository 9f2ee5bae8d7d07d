"""TEST STAND-IN for `neuronx_distributed_inference` (NxD Inference). NOT the Neuron SDK.

It runs the checkpoint's transformers model on CPU, so that CI can check that
`bench.targets.neuron.nxdi` drives NxD Inference the way its documentation says
(tests/test_generate.py):

- `NeuronConfig(**kwargs)` keeps its keyword arguments (tp_degree, batch_size, seq_len,
  max_context_length, torch_dtype, ...);
  `LlamaInferenceConfig(neuron_config, load_config=load_pretrained_config(path))` loads the
  HF config through the hook, as the real InferenceConfig does;
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/libraries/nxd-inference/api-guides/api-guide.html
- `NeuronLlamaForCausalLM(model_path, config)`: `compile(path)` needs a HF checkpoint
  (config.json + model.safetensors) and writes `neuron_config.json`; `load(path)` refuses an
  uncompiled path; a loaded model has fixed shapes like a compiled one (batch = batch_size,
  prompt <= max_context_length, prompt + output <= seq_len); `reset()` clears the KV cache;
  `forward` returns an object with `.logits`.
- `HuggingFaceGenerationAdapter(model).generate(input_ids, attention_mask=..., max_new_tokens=...)`
  runs one forward (`self(...)`) per new token, greedy on the raw logits, and calls no
  streamer, like the real adapter's `_sample` (utils/hf_adapter.py).

Each call is appended as one JSON line to $TRNBENCH_NXDI_STANDIN_LOG when that is set
(the calls happen in worker processes).
"""

from __future__ import annotations

import json
import os

__version__ = "0.0.0+standin"


def log(event: str, **fields) -> None:
    path = os.environ.get("TRNBENCH_NXDI_STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "pid": os.getpid(), **fields}, default=str) + "\n")
