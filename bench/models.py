"""Model registry: declarative cards in models/*.toml -> nn.Module + example inputs.

A card names a transformers architecture (`model_type` + config overrides), a task head,
an input kind and default shapes. Weights are random from a fixed seed unless
`weights = "pretrained"` (the card's hub id) or a local directory is asked for. Reading
cards needs no torch; building a model imports torch and transformers lazily.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.paths import model_dirs
from bench.tomlfile import read_toml

INPUT_KINDS = ("tokens", "image", "generation")
TASKS = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "image-classification": "AutoModelForImageClassification",
    "causal-lm": "AutoModelForCausalLM",
    "base": "AutoModel",
}
# The training task each card task trains on, and its labels (bench.targets.train): a class
# index per sequence or image, or the inputs themselves for a causal LM (transformers shifts
# them). A card of task `base` has no head and no loss: it cannot train.
TRAIN_TASKS = {
    "sequence-classification": "sequence classification (a class label per sequence)",
    "image-classification": "image classification (a class label per image)",
    "causal-lm": "causal LM (next-token labels: the inputs, shifted by transformers)",
    "masked-lm": "masked LM (15 % of the tokens masked, seeded; BERT's pre-training objective without NSP)",
}
# A card may train on another head than it serves (`train = "masked-lm"`: BERT pre-training).
TRAIN_CLASSES = {"masked-lm": "AutoModelForMaskedLM"}
MASK_FRACTION = 0.15
_CARD_KEYS = {"name", "family", "model_type", "task", "input", "pretrained", "params", "description",
              "tiny", "shape", "config", "train"}
_SHAPE_KEYS = {"seq_len", "max_seq_len", "image_size", "channels"}


@dataclass(frozen=True)
class ModelCard:
    name: str
    family: str
    model_type: str
    task: str
    input: str
    config: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    shape: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    pretrained: str | None = None
    params: int | None = None
    description: str = ""
    tiny: bool = False
    source: str = ""
    digest: str = ""  # hash of the card file: part of the compile-cache key
    train: str | None = None  # the training task, when not the serving task's (TRAIN_TASKS)

    @property
    def is_decoder(self) -> bool:
        return self.task == "causal-lm"

    @property
    def train_task(self) -> str | None:
        """What a training step of this card optimises (TRAIN_TASKS), None when it cannot train."""
        return self.train or (self.task if self.task in TRAIN_TASKS else None)

    def resolve_shape(self, seq_len: int | None, image_size: int | None) -> dict[str, int | None]:
        """Fill in default shapes and check them against the card's limits."""
        if self.input in ("tokens", "generation"):
            seq = seq_len or int(self.shape.get("seq_len", 128))
            limit = self.shape.get("max_seq_len")
            if limit is not None and seq > int(limit):
                raise UsageError(f"sequence length {seq} is beyond {self.name}'s limit of {limit} tokens")
            return {"seq_len": seq, "image_size": None}
        size = image_size or int(self.shape.get("image_size", 224))
        return {"seq_len": None, "image_size": size}


def _parse_card(path: Path) -> ModelCard:
    data = read_toml(path)
    unknown = sorted(set(data) - _CARD_KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r} in model card (allowed: {', '.join(sorted(_CARD_KEYS))})")
    for key in ("model_type", "task", "input"):
        if not isinstance(data.get(key), str):
            raise UsageError(f"{path}: model card needs a string {key!r}")
    if data["task"] not in TASKS:
        raise UsageError(f"{path}: unknown task {data['task']!r} (choose from {', '.join(TASKS)})")
    if data["input"] not in INPUT_KINDS:
        raise UsageError(f"{path}: unknown input {data['input']!r} (choose from {', '.join(INPUT_KINDS)})")
    for table in ("config", "shape"):
        if not isinstance(data.get(table, {}), dict):
            raise UsageError(f"{path}: [{table}] must be a table")
    bad_shape = sorted(set(data.get("shape", {})) - _SHAPE_KEYS)
    if bad_shape:
        raise UsageError(f"{path}: unknown key {bad_shape[0]!r} in [shape] (allowed: {', '.join(sorted(_SHAPE_KEYS))})")
    for key, value in data.get("shape", {}).items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{path}: [shape] {key} must be a positive integer, got {value!r}")
    params = data.get("params")
    if params is not None and (not isinstance(params, int) or isinstance(params, bool)):
        raise UsageError(f"{path}: params must be an integer, got {params!r}")
    for key in ("name", "family", "pretrained", "description", "train"):
        if key in data and not isinstance(data[key], str):
            raise UsageError(f"{path}: {key} must be a string, got {data[key]!r}")
    if "train" in data and data["train"] not in TRAIN_TASKS:
        raise UsageError(f"{path}: unknown train task {data['train']!r} (choose from {', '.join(TRAIN_TASKS)})")
    return ModelCard(
        name=data.get("name", path.stem),
        family=data.get("family", data["model_type"]),
        model_type=data["model_type"],
        task=data["task"],
        input=data["input"],
        config=dict(data.get("config", {})),
        shape=dict(data.get("shape", {})),
        pretrained=data.get("pretrained"),
        params=params,
        description=data.get("description", ""),
        tiny=bool(data.get("tiny", False)),
        train=data.get("train"),
        source=str(path),
        digest=hashlib.sha1(path.read_bytes()).hexdigest()[:16],
    )


@cache
def _registry_cached(dirs: tuple[Path, ...]) -> dict[str, ModelCard]:
    cards: dict[str, ModelCard] = {}
    for d in dirs:
        for path in sorted(d.glob("*.toml")):
            card = _parse_card(path)
            cards.setdefault(card.name, card)
    return cards


def registry() -> dict[str, ModelCard]:
    return _registry_cached(tuple(model_dirs()))


def card(name: str) -> ModelCard:
    cards = registry()
    if name not in cards:
        raise UsageError(f"unknown model {name!r} (known: {', '.join(sorted(cards))})")
    return cards[name]


# -- building (imports torch / transformers) ------------------------------------------------


def hf_config(c: ModelCard, image_size: int | None = None):
    from transformers import AutoConfig

    overrides = dict(c.config)
    if image_size is not None and c.model_type in ("vit", "deit", "swin", "beit"):
        overrides["image_size"] = image_size
    return AutoConfig.for_model(c.model_type, **overrides)


def _auto_class(c: ModelCard):
    import transformers

    return getattr(transformers, TASKS[c.task])


def count_params(c: ModelCard) -> int:
    """Parameter count without allocating weights (built on the meta device)."""
    import torch

    with torch.device("meta"):
        model = _auto_class(c).from_config(hf_config(c))
    return sum(p.numel() for p in model.parameters())


def build(c: ModelCard, weights: str = "random", *, image_size: int | None = None, seed: int = 0):
    """The card's model in eval mode, fp32, wrapped to take and return plain tensors."""
    import torch

    _quiet_transformers()
    cls = _auto_class(c)
    if weights == "random":
        torch.manual_seed(seed)
        model = cls.from_config(hf_config(c, image_size))
    else:
        source = c.pretrained if weights == "pretrained" else weights
        if not source:
            raise UsageError(f"model {c.name} has no pretrained id; pass a local directory as weights")
        try:
            model = cls.from_pretrained(source)
        except (OSError, ValueError) as exc:  # offline, missing files, not a model directory
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cannot load pretrained weights {source!r} for {c.name}: {first}") from None
    return wrap_tensors_only(model.eval(), input_names(c), decoder=c.is_decoder)


def build_for_training(c: ModelCard, weights: str = "random", *, image_size: int | None = None, seed: int = 0):
    """The card's transformers model with its task head, in train mode, fp32, dropout off.

    Dropout is off so that a step's loss depends on the weights and the batch alone: the
    numerics check then compares devices whose random streams differ. Every float config
    field named like a dropout (hidden_dropout_prob, attention_probs_dropout_prob,
    attention_dropout, resid_pdrop, ...) is set to 0 before the model is built."""
    import torch

    _quiet_transformers()
    if c.train_task is None:  # pragma: no cover - plan time refuses it first
        raise UsageError(f"{c.name} (task {c.task}) has no training task (choose a card of task "
                         f"{', '.join(TRAIN_TASKS)})")
    config = hf_config(c, image_size)
    for name, value in list(vars(config).items()):
        if isinstance(value, float) and ("dropout" in name or name.endswith("pdrop")):
            setattr(config, name, 0.0)
    import transformers

    cls = getattr(transformers, TRAIN_CLASSES[c.train]) if c.train in TRAIN_CLASSES else _auto_class(c)
    if weights == "random":
        torch.manual_seed(seed)
        model = cls.from_config(config)
    else:
        source = c.pretrained if weights == "pretrained" else weights
        model = cls.from_pretrained(source, config=config)
    return model.train()


def training_batches(c: ModelCard, micro_batches: int, batch_size: int, seq_len: int | None,
                     image_size: int | None, seed: int = 0) -> list[dict]:
    """`micro_batches` fixed-seed batches with labels, as keyword arguments of the model."""
    import torch

    out = []
    for i in range(micro_batches):
        inputs = make_inputs(c, batch_size, seq_len, image_size, seed=seed + i)
        gen = torch.Generator().manual_seed(10_000 + seed + i)
        if c.input == "image":
            labels = torch.randint(0, int(hf_config(c).num_labels), (batch_size,), generator=gen)
            out.append({"pixel_values": inputs[0], "labels": labels})
        elif c.is_decoder:
            out.append({"input_ids": inputs[0], "attention_mask": inputs[1], "labels": inputs[0].clone()})
        elif c.train_task == "masked-lm":  # the loss over the masked positions only (-100 elsewhere)
            masked = torch.rand(inputs[0].shape, generator=gen) < MASK_FRACTION
            labels = torch.where(masked, inputs[0], torch.full_like(inputs[0], -100))
            out.append({"input_ids": inputs[0], "attention_mask": inputs[1], "labels": labels})
        else:
            labels = torch.randint(0, int(hf_config(c).num_labels), (batch_size,), generator=gen)
            out.append({"input_ids": inputs[0], "attention_mask": inputs[1], "labels": labels})
    return out


def check_weights(c: ModelCard, weights: str) -> None:
    """Fail fast (before any run directory exists) when pretrained weights cannot be had.

    Reads only the config (from the local directory, the hub cache, or - when the user
    asked for hub weights and is online - the hub).
    """
    if weights == "random":
        return
    source = c.pretrained if weights == "pretrained" else weights
    if not source:
        raise UsageError(f"model {c.name} has no pretrained id; pass a local directory as weights")
    from transformers import AutoConfig

    _quiet_transformers()
    try:
        AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot load pretrained weights {source!r} for {c.name}: {first}") from None


def input_names(c: ModelCard) -> tuple[str, ...]:
    return ("pixel_values",) if c.input == "image" else ("input_ids", "attention_mask")


def make_inputs(c: ModelCard, batch_size: int, seq_len: int | None, image_size: int | None, seed: int = 0):
    """Fixed-seed example inputs: the same tensors in every process and every run."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    if c.input == "image":
        channels = int(c.shape.get("channels", c.config.get("num_channels", 3)))
        return (torch.randn(batch_size, channels, image_size, image_size, generator=gen),)
    vocab = int(c.config.get("vocab_size", _default_vocab(c)))
    ids = torch.randint(3, vocab, (batch_size, seq_len), generator=gen)
    return (ids, torch.ones(batch_size, seq_len, dtype=torch.long))


@cache
def _default_vocab(c: ModelCard) -> int:
    return int(hf_config(c).vocab_size)


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()


@cache
def _tensors_only_class():
    """Defined on first use so that `import bench.models` does not import torch."""
    import torch

    class TensorsOnlyModule(torch.nn.Module):
        """Positional tensors in, one tensor out: the form tracing compilers need.

        transformers' output objects and its DynamicCache cannot be traced, so the call
        passes `return_dict=False` (and `use_cache=False` for decoders) and keeps logits.
        """

        def __init__(self, model, names: tuple[str, ...], decoder: bool):
            super().__init__()
            self.model = model
            self.names = names
            self.extra = {"return_dict": False, **({"use_cache": False} if decoder else {})}

        def forward(self, *tensors):
            out = self.model(**dict(zip(self.names, tensors)), **self.extra)
            return out[0] if isinstance(out, (tuple, list)) else out

    return TensorsOnlyModule


def wrap_tensors_only(model, names: tuple[str, ...], decoder: bool = False):
    return _tensors_only_class()(model, names, decoder)
