"""The Neuron documentation's published trn1 training figures -> rows of a reference table.

about-neuron/benchmarks/trn1/trn1-training-performance.rst (aws-neuron/aws-neuron-sdk) renders
training_data_encoder.csv, training_data_decoder.csv and training_data_vision_transformers.csv:
one row per configuration with `Training Data-Type`, `Nodes`, `Topology`, `Microbatch`,
`Globalbatch`, ` Optimizer`, ` Sequence Length` (not in the vision file) and
` Performance [seq/sec]`, measured with the PyTorch/XLA flow (torch-neuronx 2.x, Neuron 2.28
and earlier). A row becomes a `train` cell's key: the card, `neuron` / `xla` on the
instance, micro-batch as batch_size, the data-parallel ranks (NeuronCores x nodes) as `dp`,
Globalbatch / (micro-batch x ranks) as `grad_accum`, the optimizer and the precision. Rows
trnbench cannot run are skipped with the reason: no card, Lamb, tensor or pipeline parallel.
The figures are the Neuron team's, not measured by trnbench.
"""

from __future__ import annotations

import re
from typing import Any

from bench.analysis.reference import float_or_nan, sdk_version_text

TRAIN_PAGE = "https://awsdocs-neuron.readthedocs-hosted.com/en/latest/about-neuron/benchmarks/trn1/trn1-training-performance.html"
# `Training Data-Type` -> trnbench's precision: Autocast is torch.autocast to bf16 over fp32
# master weights (+SR: with NEURON_RT_STOCHASTIC_ROUNDING_EN=1, + FP32Optimizer: the optimizer in fp32)
PRECISIONS = {"autocast:bf16+sr": "amp-bf16", "autocast:bf16+fp32optimizer": "amp-bf16", "fp32": "fp32",
              "bf16": "bf16"}
OPTIMIZERS = {"adamw": "adamw", "sgd": "sgd"}


def is_training_file(columns: set[str]) -> bool:
    """A training data file: micro-batch, global batch and seq/sec columns."""
    return {"microbatch", "globalbatch"} <= columns


def training_row(rec: dict[str, str], cards: dict[str, str], data_file: str, source_url: str) -> dict[str, Any]:
    """One published training configuration as a reference row (ValueError: why it is skipped)."""
    published = rec["model"]
    base = re.sub(r"^huggingface\s+", "", published.strip().lower())
    base = re.sub(r"\s+(ph\d\s+)?(pre-training|fine-tuning)$", "", base)
    model = next((card for spelling, card in sorted(cards.items()) if spelling.startswith(base)), None)
    if model is None:
        raise ValueError(f"no model card for {published!r}")
    topology = rec.get("topology", "")
    if re.search(r"\b(TP|PP)=(\d+)", topology) and not re.search(r"\bTP=1\b.*\bPP=1\b", topology):
        raise ValueError(f"topology {topology!r}: tensor or pipeline parallel is beyond trnbench's --dp")
    cores = re.search(r"(\d+)xNC\(DP\)", topology)
    if cores is None:
        raise ValueError(f"topology {topology!r} is not data parallel over NeuronCores")
    nodes = int(float_or_nan(rec.get("nodes")) if rec.get("nodes") else 1)
    if nodes != 1:
        raise ValueError(f"{nodes} nodes: trnbench's --dp runs on one node (torchrun across nodes is documented)")
    ranks = int(cores.group(1)) * nodes
    micro, glob = int(float_or_nan(rec.get("microbatch"))), int(float_or_nan(rec.get("globalbatch")))
    if glob % (micro * ranks):
        raise ValueError(f"global batch {glob} is not a multiple of micro-batch {micro} x {ranks} ranks")
    optimizer = OPTIMIZERS.get(str(rec.get("optimizer", "")).strip().lower())
    if optimizer is None:
        raise ValueError(f"optimizer {rec.get('optimizer')!r}: trnbench trains with adamw or sgd")
    cast = str(rec.get("training_data_type", "")).strip().lower().replace(" ", "")
    precision = PRECISIONS.get(cast)
    if precision is None:
        raise ValueError(f"training data type {rec.get('training_data_type')!r} has no trnbench precision")
    seq = rec.get("seq_len")
    instance = str(rec.get("instance", "")).split("/")[0].strip().lower()
    return {
        "model": model, "instance_type": instance, "target": "neuron", "scenario": "train",
        "batch_size": micro, "seq_len": int(float_or_nan(seq)) if seq else None, "image_size": None,
        "precision": precision, "compiler_args": "", "n_models": 1, "workers_per_model": 1,
        "throughput_avg": rec.get("throughput", ""), "latency_ms_p50": "", "latency_ms_p99": "",
        "sdk_version": sdk_version_text(rec.get("sdk_version")), "framework": "PyTorch/XLA (torch-neuronx "
        f"{str(rec.get('pytorch_neuron_torch_neuronx_version', '')).strip()})",
        "published_model": published, "published_task": "training", "application_type": "",
        "source_url": source_url or TRAIN_PAGE, "data_file": data_file,
        "note": (f"{rec.get('strong_weak_scaling', '').strip()}; compiler xla on trn1 (-c xla, Neuron 2.29 or "
                 f"earlier); global batch {glob}" + ("; stochastic rounding (NEURON_RT_STOCHASTIC_ROUNDING_EN=1)"
                                                     if "+sr" in cast else "")),
        "grad_accum": glob // (micro * ranks), "dp": ranks, "optimizer": optimizer, "compiler": "xla",
    }
