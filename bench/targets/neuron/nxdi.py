"""The `generate` scenario on Neuron through NxD Inference (`neuronx_distributed_inference`).

Compiler `nxdi`. The flow is the documented one (NxD Inference API reference and feature
guide, "Compiling models" / "Running inference"):

    neuron_config = NeuronConfig(tp_degree=..., batch_size=..., seq_len=..., max_context_length=...,
                                 torch_dtype=...)
    config = LlamaInferenceConfig(neuron_config, load_config=load_pretrained_config(checkpoint))
    model = NeuronLlamaForCausalLM(checkpoint, config)
    model.compile(compiled_path)
    model.load(compiled_path)
    HuggingFaceGenerationAdapter(model).generate(input_ids, attention_mask=..., max_new_tokens=...)

https://awsdocs-neuron.readthedocs-hosted.com/en/latest/libraries/nxd-inference/api-guides/api-guide.html
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/libraries/nxd-inference/developer_guides/feature-guide.html
https://github.com/aws-neuron/neuronx-distributed-inference (utils/hf_adapter.py, utils/benchmark.py)

- The checkpoint NxD Inference loads is the card's model (seeded random weights,
  `pretrained`, or a local directory) saved with `save_pretrained` (safetensors) into the
  artifact, so the Neuron model has the same weights as the CPU one.
- NeuronConfig: `batch_size` = the cell's batch, `max_context_length` = the input length,
  `seq_len` = input + output length, `torch_dtype` = the cell's dtype, `tp_degree` = 1.
  The cell's compiler args are NeuronConfig overrides, `key=value` each (e.g.
  `--compiler-args "tp_degree=2 enable_bucketing=true"`); values are read as JSON where
  they parse (numbers, true/false) and as strings otherwise.
- The compiled model is cached under `<cache>/nxdi/<key>/` (key: card digest, weights,
  shapes, dtype, overrides, NxD Inference / compiler versions); a hit skips `compile`.
- Token timing: the adapter (`HuggingFaceGenerationAdapter(PreTrainedModel, GenerationMixin)`)
  overrides transformers' `_sample` and never hands new tokens to a streamer, but makes one
  `self(**model_inputs)` call per generated token (the first is the context encoding and
  yields the first token), so a forward hook on the adapter takes one timestamp per token.
- The adapter's `generate()` calls `self.neuron_model.reset()` itself ("Keep generation
  stateless", utils/hf_adapter.py), so each request starts with a fresh KV cache without a
  reset of ours.
- Exactly `output_len` tokens: with CPU sampling (NeuronConfig's default,
  `on_device_sampling_config=None`) the adapter applies transformers' logits processors,
  so `min_new_tokens` holds back EOS; with on-device sampling it takes `outputs.tokens` and
  the processors do not apply, so, as NxD Inference's own benchmark does
  (utils/benchmark.py: "on_device_sampling flow does not support min_new_tokens"), EOS is
  switched off with `eos_token_id=[]`. The request loop still checks every request
  produced exactly `output_len` tokens and fails the cell otherwise.
- NeuronConfig only logs a warning for a keyword it does not know ("NeuronConfig init:
  Unexpected keyword arguments", models/config.py), so a misspelt override would be
  silently ignored: overrides are checked at plan time against the keys NeuronConfig reads
  (parsed from the installed package's models/config.py, else the list below).
- NxD Inference is not in DLAMIs / DLCs from Neuron 2.32 and is in maintenance; it is
  unsupported on Trn2/Trn3 from 2.34. Install it with `sdk.NXDI_INSTALL`.
- A model copy with `tp_degree` N needs N NeuronCores: the process's
  NEURON_RT_VISIBLE_CORES must name at least N cores, or the cell fails saying so.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets.cache import get_or_build

PACKAGE = "neuronx_distributed_inference"
# HF model_type -> (module, InferenceConfig class, application class) in NxD Inference's model hub
MODELS: dict[str, tuple[str, str, str]] = {
    "llama": ("neuronx_distributed_inference.models.llama.modeling_llama", "LlamaInferenceConfig",
              "NeuronLlamaForCausalLM"),
    "mistral": ("neuronx_distributed_inference.models.mistral.modeling_mistral", "MistralInferenceConfig",
                "NeuronMistralForCausalLM"),
    "qwen2": ("neuronx_distributed_inference.models.qwen2.modeling_qwen2", "Qwen2InferenceConfig",
              "NeuronQwen2ForCausalLM"),
}
_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def availability() -> tuple[bool, str]:
    """Whether NxD Inference imports here, and if not, why in one sentence."""
    try:
        importlib.import_module(PACKAGE)
    except ImportError as exc:
        return False, (f"{PACKAGE} is not importable ({str(exc).splitlines()[0]}): install "
                       "neuronx-distributed-inference from the Neuron SDK's pip repository "
                       "(--extra-index-url https://pip.repos.neuron.amazonaws.com) or use a Neuron DLAMI venv")
    return True, ""


def parse_overrides(args: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`key=value` compiler args -> NeuronConfig keyword arguments (JSON values where they parse)."""
    out: dict[str, Any] = {}
    for arg in args:
        key, sep, text = arg.lstrip("-").partition("=")
        key = key.replace("-", "_")
        if not sep or not key.isidentifier():
            raise UsageError(f"compiler nxdi takes NeuronConfig overrides as key=value, got {arg!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = {"True": True, "False": False}.get(text, text)
        out[key] = value
    return out


# The keywords NeuronConfig.__init__ reads (`kwargs.pop(...)`), from
# aws-neuron/neuronx-distributed-inference @ 4bcdc54 src/neuronx_distributed_inference/models/
# config.py: the fallback when no installed package can be read.
NEURON_CONFIG_KEYS = frozenset("""
batch_size padding_side allow_input_truncation seq_len n_active_tokens n_positions on_cpu output_logits
torch_dtype overrides_torch_dtype cast_type rpl_reduce_dtype attention_dtype max_context_length max_new_tokens
max_length vocab_parallel enable_cte_modular_flow layer_boundary_markers fused_qkv sequence_parallel_enabled
weight_gather_seq_len_threshold attn_cls ctx_batch_size tkg_batch_size max_batch_size is_continuous_batching
kv_cache_batch_size kv_cache_padding_size on_device_sampling_config disable_argmax_kernel async_mode
enable_bucketing buckets bucket_n_active_tokens context_encoding_buckets prefix_buckets token_generation_buckets
token_generation_batches quantized quantized_checkpoints_path quantization_type quantization_dtype
quantization_block_size quantization_block_axis quantization_scale_dtype is_mxfp4_compute is_full_model_shuffled
modules_to_not_convert draft_model_modules_to_not_convert kv_cache_quant kv_quant_config speculation_length
spec_batch_size enable_fused_speculation enable_eagle_speculation eagle_rolling_buffer_kernel_enabled is_eagle3
is_eagle_draft enable_eagle_draft_input_norm token_tree_config is_medusa medusa_speculation_length
num_medusa_heads medusa_tree is_block_kv_layout pa_num_blocks pa_block_size is_prefix_caching
windowed_context_encoding_size chunked_prefill_config tensor_replacement_config tensor_capture_config lora_config
tp_degree cp_degree mlp_cp_degree attention_dp_degree pp_degree ep_degree save_sharded_checkpoint skip_sharding
enable_ve_data_parallel qk_layernorm pre_rope_rmsnorm world_size start_rank_id local_ranks_size
flash_decoding_enabled disable_kv_cache_tiling k_cache_transposed attn_kernel_enabled
strided_context_parallel_kernel_enabled qkv_kernel_enabled qkv_nki_kernel_enabled qkv_cte_nki_kernel_fuse_rope
qkv_kernel_nbsd_layout mlp_kernel_enabled mlp_tkg_nki_kernel_enabled fused_rmsnorm_skip_gamma
mlp_kernel_fuse_residual_add qkv_kernel_fuse_residual_add quantized_mlp_kernel_enabled out_proj_kernel_enabled
activation_quantization_type attn_tkg_nki_kernel_enabled attn_tkg_builtin_kernel_enabled
attn_block_tkg_nki_kernel_enabled attn_block_tkg_nki_kernel_cache_update
attn_block_tkg_nki_kernel_cascaded_attention attn_block_tkg_nki_kernel_use_online_softmax
attn_block_tkg_nki_kernel_disable_gpsimd_sb2sb attn_block_cte_nki_kernel_enabled rmsnorm_quantize_kernel_enabled
quantize_clamp_bound moe_fused_nki_kernel_enabled router_topk_nki_kernel_enabled expert_mlp_nki_kernel_enabled
shared_mlp_nki_kernel_enabled logical_nc_config logical_neuron_cores lm_head_pad lm_head_pad_alignment_size
cc_pipeline_tiling_factor seq_len_threshold_for_cc_tiling target enable_spill_reload_dge
weights_to_skip_layout_optimization dma_order_config apply_seq_ids_mask skip_warmup scratchpad_page_size
enable_output_completion_notifications padded_hidden_size padded_intermediate_size disable_numeric_cc_token
switch_cc ep_dispatch_cc_option
""".split())
_POP = re.compile(r"""kwargs\.(?:pop|get)\(\s*["']([A-Za-z_]\w*)["']|["']([A-Za-z_]\w*)["']\s+in\s+kwargs""")


def neuron_config_keys() -> tuple[frozenset[str], str]:
    """(the keywords NeuronConfig reads, where that list came from).

    Read from the installed package's source without importing it (importing NxD Inference
    imports torch_neuronx, which the orchestrator must not do); else NEURON_CONFIG_KEYS.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "models" / "config.py"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        start = text.find("class NeuronConfig")
        end = text.find("\nclass ", start + 1)
        body = text[start:end if end > 0 else None] if start >= 0 else ""
        keys = {a or b for a, b in _POP.findall(body)}
        if keys:
            return frozenset(keys), str(path)
    return NEURON_CONFIG_KEYS, "neuronx-distributed-inference @ 4bcdc54 (models/config.py)"


def check_overrides(args: tuple[str, ...] | list[str]) -> None:
    """Refuse a NeuronConfig override that NeuronConfig would only warn about and ignore."""
    overrides = parse_overrides(args)
    keys, source = neuron_config_keys()
    unknown = sorted(set(overrides) - keys)
    if unknown:
        near = difflib.get_close_matches(unknown[0], sorted(keys), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise UsageError(f"compiler nxdi: NeuronConfig has no setting {unknown[0]!r}{hint}; it would be ignored "
                         f"with a warning (keys read from {source})")


def neuron_config_kwargs(cell: Cell) -> dict[str, Any]:
    """The NeuronConfig of a generate cell (torch_dtype as a string; see `_resolve_dtype`)."""
    if cell.seq_len is None or cell.output_len is None:
        raise ValueError("a generate cell needs seq_len and output_len")
    kwargs: dict[str, Any] = {
        "tp_degree": 1,
        "batch_size": cell.batch_size,
        "max_context_length": cell.seq_len,
        "seq_len": cell.seq_len + cell.output_len,
        "torch_dtype": _TORCH_DTYPES[cell.dtype],
    }
    kwargs.update(parse_overrides(cell.compiler_args))
    return kwargs


def _resolve_dtype(kwargs: dict[str, Any]) -> dict[str, Any]:
    import torch

    out = dict(kwargs)
    if isinstance(out.get("torch_dtype"), str):
        out["torch_dtype"] = getattr(torch, out["torch_dtype"])
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("neuronx-distributed-inference", "neuronx-distributed", "neuronx-cc", "torch-neuronx",
                 "transformers", "torch"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = ""
    return out


def model_classes(model_type: str):
    if model_type not in MODELS:
        raise UsageError(f"NxD Inference has no model for model_type {model_type!r} here "
                         f"(supported: {', '.join(sorted(MODELS))})")
    module_name, config_name, model_name = MODELS[model_type]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, model_name)


def visible_core_count(value: str | None) -> int | None:
    """Cores named by NEURON_RT_VISIBLE_CORES ('3', '0-3', '0,2'); None when unset."""
    if not value:
        return None
    count = 0
    for part in value.split(","):
        lo, _, hi = part.strip().partition("-")
        count += (int(hi) - int(lo) + 1) if hi else 1
    return count


class NxdGenerator:
    """One request = the adapter's greedy generate (which resets the KV cache); one tick per forward."""

    def __init__(self, model, adapter, input_ids, attention_mask, output_len: int, pad_token_id: int,
                 on_device_sampling: bool = False):
        self.model = model
        self.adapter = adapter
        self.input_ids = input_ids
        self.attention_mask = attention_mask
        self.output_len = output_len
        self.pad_token_id = pad_token_id
        # min_new_tokens works through the logits processors, which on-device sampling skips:
        # there EOS is switched off instead, as NxD Inference's benchmark does.
        self.extra = {"eos_token_id": []} if on_device_sampling else {}
        self._on_token: Callable[[], None] | None = None
        adapter.register_forward_hook(self._hook)

    def _hook(self, module, args, output) -> None:
        if self._on_token is not None:
            self._on_token()

    def __call__(self, on_token: Callable[[], None]) -> int:
        self._on_token = on_token  # the adapter's generate() resets the KV cache itself
        try:
            out = self.adapter.generate(self.input_ids, attention_mask=self.attention_mask,
                                        max_new_tokens=self.output_len, min_new_tokens=self.output_len,
                                        do_sample=False, pad_token_id=self.pad_token_id, **self.extra)
        finally:
            self._on_token = None
        return int(out.shape[-1] - self.input_ids.shape[-1])


def build(card, cell: Cell, hf_model_fn: Callable[[], Any], cache_root: Path) -> dict[str, Any]:
    """Compile (or reuse) and load the NxD Inference model of a generate cell.

    `hf_model_fn()` returns the card's transformers model (fp32), saved as the checkpoint
    when compiling. Returns {"generator", "compile_s", "load_s", "cache_hit", "artifact"}.
    """
    ok, reason = availability()
    if not ok:
        raise RuntimeError(reason)
    from neuronx_distributed_inference.models.config import NeuronConfig
    from neuronx_distributed_inference.utils.hf_adapter import (
        HuggingFaceGenerationAdapter,
        load_pretrained_config,
    )

    from bench import models

    config_cls, model_cls = model_classes(card.model_type)
    kwargs = neuron_config_kwargs(cell)
    cores = visible_core_count(os.environ.get("NEURON_RT_VISIBLE_CORES"))
    tp = int(kwargs.get("tp_degree", 1))
    if cores is not None and cores < tp:
        raise RuntimeError(f"tp_degree={tp} needs {tp} NeuronCores per model copy but this process sees "
                           f"NEURON_RT_VISIBLE_CORES={os.environ['NEURON_RT_VISIBLE_CORES']}")
    key = {"card": card.name, "card_digest": card.digest, "weights": cell.weights,
           "neuron_config": kwargs, "versions": _versions()}

    def make(checkpoint: Path):
        config = config_cls(NeuronConfig(**_resolve_dtype(kwargs)), load_config=load_pretrained_config(str(checkpoint)))
        return model_cls(str(checkpoint), config)

    def compile_into(directory: Path) -> float:
        """The card's weights as the checkpoint, then NxD Inference's compile; returns the compile's time."""
        from transformers.utils import logging as hf_logging

        (directory / "checkpoint").mkdir()
        hf_logging.disable_progress_bar()
        hf_model_fn().save_pretrained(str(directory / "checkpoint"), safe_serialization=True)
        t0 = time.perf_counter()
        # compiled against <dir>/checkpoint; loaded below from where the directory ends up
        make(directory / "checkpoint").compile(str(directory / "compiled"))
        return time.perf_counter() - t0

    entry = get_or_build(Path(cache_root), "nxdi", key, compile_into)
    final, hit, compile_s = entry.path, bool(entry.hit), entry.build_s
    t0 = time.perf_counter()
    model = make(final / "checkpoint")
    model.load(str(final / "compiled"))
    adapter = HuggingFaceGenerationAdapter(model)
    load_s = time.perf_counter() - t0
    input_ids, attention_mask = models.make_inputs(card, cell.batch_size, cell.seq_len, None)
    eos = card.config.get("eos_token_id", 0)
    pad = int(card.config.get("pad_token_id", eos[0] if isinstance(eos, list) else eos) or 0)
    generator = NxdGenerator(model, adapter, input_ids, attention_mask, cell.output_len, pad,
                             on_device_sampling=kwargs.get("on_device_sampling_config") is not None)
    return {"generator": generator, "inputs": (input_ids, attention_mask), "compile_s": compile_s,
            "load_s": load_s, "cache_hit": hit, "artifact": str(final)}
