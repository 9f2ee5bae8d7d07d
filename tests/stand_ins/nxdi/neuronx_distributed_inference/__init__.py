"""TEST STAND-IN for `neuronx_distributed_inference` (NxD Inference). NOT the Neuron SDK.

It runs the checkpoint's transformers model on CPU, so that CI can check that
`bench.targets.neuron.nxdi` drives NxD Inference the way its documentation says
(tests/e2e/test_generate.py):

- `NeuronConfig(**kwargs)` keeps the keyword arguments it knows and only logs a warning for
  others, as the real one does (models/config.py);
  `LlamaInferenceConfig(neuron_config, load_config=load_pretrained_config(path))` loads the
  HF config through the hook, as the real InferenceConfig does;
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/libraries/nxd-inference/api-guides/api-guide.html
- `NeuronLlamaForCausalLM(model_path, config)`: `compile(path)` needs a HF checkpoint
  (config.json + model.safetensors) and writes `neuron_config.json`; `load(path)` refuses an
  uncompiled path; a loaded model has fixed shapes like a compiled one (batch = batch_size,
  prompt <= max_context_length, prompt + output <= seq_len); `reset()` clears the KV cache;
  `forward` returns an object with `.logits`.
- `HuggingFaceGenerationAdapter(model).generate(input_ids, attention_mask=..., max_new_tokens=...)`
  resets the model, runs one forward (`self(...)`) per new token, applies `min_new_tokens`
  only with CPU sampling, stops at EOS, and calls no streamer, like the real adapter's
  `generate` / `_sample` (utils/hf_adapter.py @ 4bcdc54).
- `models.mistral.modeling_mistral`: Mistral's own classes, as in the real model hub.

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
