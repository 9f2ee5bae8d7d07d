"""Prompts for an endpoint cell: synthetic ones of an exact token length, or a local dataset.

Synthetic prompts: random token ids from the served model's tokenizer (special tokens left
out), decoded to text and encoded again until the text is exactly `seq_len` tokens, because
decode -> encode does not round-trip (merges across the joins): vLLM's random dataset meets
the same problem (vllm/benchmarks/datasets.py, RandomDataset). Seeded, so every run and
every client process sends the same prompts.

A dataset is a local file of prompts, JSON lines or one JSON array, in either layout:
- {"prompt": "...", "output_len": 128}  (output_len optional)
- ShareGPT: {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]}
  the first human turn is the prompt and, as vLLM's ShareGPT sampler does, the token length
  of the reply that follows it is the request's output length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UsageError

SEED = 0
MAX_TRIES = 16


@dataclass(frozen=True)
class Prompt:
    text: str
    tokens: int  # by the tokenizer, without special tokens
    output_len: int


class FastTokenizer:
    """A `tokenizer.json` through the `tokenizers` library alone: the calls prompts need, in
    0.05 s where importing transformers' AutoTokenizer takes ~3 s on a small VM (measured),
    which would be the client's start-up."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self.all_special_ids = [i for i, t in self._tok.get_added_tokens_decoder().items() if t.special]

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=False)


def load_tokenizer(name_or_dir: str):
    """The tokenizer, from a local directory or the local hub cache only (never the network)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    fast = Path(name_or_dir) / "tokenizer.json"
    if fast.is_file():
        try:
            return FastTokenizer(fast)
        except Exception:  # noqa: BLE001 - transformers may still read what tokenizers alone cannot
            pass
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name_or_dir, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the user's input
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UsageError(f"cannot load the tokenizer {name_or_dir!r} offline ({first}); "
                         "give --tokenizer DIR, a local directory holding it") from None


def synthetic(tokenizer, n: int, seq_len: int, output_len: int, seed: int = SEED) -> list[Prompt]:
    """`n` prompts of exactly `seq_len` tokens each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocab = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
    if vocab.size == 0:
        raise UsageError("the tokenizer has no ordinary tokens to build prompts from")
    out = []
    for _ in range(n):
        ids = rng.choice(vocab, size=seq_len).tolist()
        for _ in range(MAX_TRIES):
            text = tokenizer.decode(ids)
            again = tokenizer.encode(text, add_special_tokens=False)
            if len(again) == seq_len:
                break
            # too long: cut; too short: top up with fresh tokens; then decode again
            ids = again[:seq_len] + rng.choice(vocab, size=max(0, seq_len - len(again))).tolist()
        else:
            raise UsageError(f"could not build a prompt of exactly {seq_len} tokens with this tokenizer")
        out.append(Prompt(text, seq_len, output_len))
    return out


def from_dataset(path: str | Path, tokenizer, output_len: int | None, limit: int | None = None) -> list[Prompt]:
    """The prompts of a local JSONL/JSON file (see the module docstring)."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--dataset {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        stripped = raw.lstrip()
        entries = json.loads(raw) if stripped.startswith("[") else [json.loads(x) for x in raw.splitlines() if x.strip()]
    except ValueError as exc:
        raise UsageError(f"--dataset {path}: not JSON lines or a JSON array ({exc})") from None
    prompts = []
    for entry in entries:
        prompt = _entry(entry, tokenizer, output_len)
        if prompt is not None:
            prompts.append(prompt)
        if limit and len(prompts) >= limit:
            break
    if not prompts:
        raise UsageError(f"--dataset {path}: no prompt in it (each line needs 'prompt', or ShareGPT 'conversations')")
    return prompts


def _entry(entry, tokenizer, output_len: int | None) -> Prompt | None:
    if not isinstance(entry, dict):
        return None
    reply = None
    if isinstance(entry.get("prompt"), str):
        text = entry["prompt"]
        out = entry.get("output_len")
    elif isinstance(entry.get("conversations"), list):
        turns = [t for t in entry["conversations"] if isinstance(t, dict) and isinstance(t.get("value"), str)]
        if len(turns) < 1 or turns[0].get("from") not in ("human", "user"):
            return None
        text = turns[0]["value"]
        reply = turns[1]["value"] if len(turns) > 1 else None
        out = None
    else:
        return None
    if not text:
        return None
    if output_len is not None:
        out = output_len
    elif out is None and reply is not None:
        out = len(tokenizer.encode(reply, add_special_tokens=False))
    if not isinstance(out, int) or out < 1:
        return None  # vLLM's sampler skips these too
    return Prompt(text, len(tokenizer.encode(text, add_special_tokens=False)), int(out))
