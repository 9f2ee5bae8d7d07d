"""Prompts for an endpoint cell: synthetic ones of an exact token length, or a local dataset.

Synthetic prompts: random token ids from the served model's tokenizer (special tokens left
out), decoded to text and encoded again until the text is exactly `seq_len` tokens, because
decode -> encode does not round-trip (merges across the joins): vLLM's random dataset meets
the same problem (vllm/benchmarks/datasets.py, RandomDataset). When that does not settle
(a small BPE merges across the joins on every try) the tail is repaired at the token level
(`_repair`): cut the re-encoded ids back, pad with filler tokens that start a pre-token of
their own, and at last try each vocabulary token as the final one. A length no text reaches
gives the nearest one (`Prompt.tokens`, the row's `input_tokens`); a cell never fails for it.
Seeded, so every run and every client process sends the same prompts.

The tokenizer (`resolve`): `--tokenizer DIR`; else the served model's name from a local
directory or the local hub cache; else the server's own, through `POST /tokenize` at its
root (`ServerTokenizer`: vLLM's, with `/detokenize`, or TGI's).

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
from typing import Any

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
    if not Path(name_or_dir).exists() and not _in_hub_cache(name_or_dir):
        # nothing of it here: fail now, without importing transformers (~3 s) to be told so
        raise UsageError(f"cannot load the tokenizer {name_or_dir!r} offline (not a directory, not in the local "
                         "hub cache); give --tokenizer DIR, a local directory holding it")
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name_or_dir, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the user's input
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UsageError(f"cannot load the tokenizer {name_or_dir!r} offline ({first}); "
                         "give --tokenizer DIR, a local directory holding it") from None


def _in_hub_cache(name: str) -> bool:
    """Whether the local hub cache holds any file of `name` a tokenizer loads from (True when unsure)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return any(isinstance(try_to_load_from_cache(name, f), str)
                   for f in ("tokenizer_config.json", "tokenizer.json", "config.json"))
    except Exception:  # noqa: BLE001 - not a repo id, no huggingface_hub: let transformers decide
        return True


# -- the server's tokenizer ------------------------------------------------------------------

TOKENIZE_TIMEOUT_S = 10.0  # one /tokenize or /detokenize call
# Text whose tokens are the ids a server tokenizer draws prompts from (it tells no vocabulary
# size): common words, digits and punctuation, each with and without a leading space.
SEED_WORDS = ("the of and to in is was for on that with as by at from it be this are or an not have "
              "which one all were when there can more time some would into about only other new used "
              "then first year also city people state world after system two water between made many "
              "part number under while where three group since form house music great small under "
              "light place river power line north south night name every point order early large "
              "0 1 2 3 4 5 6 7 8 9 10 42 100 2024 , . ; : ! ? - ( ) ' \" / a b c d e f g h i j k l m n o p q r "
              "s t u v w x y z").split()


class ServerTokenizer:
    """The served model's tokenizer behind the server's `POST /tokenize` (and `/detokenize`),
    at the server's root, not under /v1. Shapes, from the servers' sources:

    - vLLM (vllm-project/vllm vllm/entrypoints/serve/tokenize/protocol.py and its api_router.py,
      routes "/tokenize" and "/detokenize"; before, vllm/entrypoints/openai/protocol.py and
      vllm/entrypoints/openai/api_server.py): TokenizeCompletionRequest
      {"model", "prompt", "add_special_tokens"} -> TokenizeResponse {"count", "max_model_len",
      "tokens", "token_strs"}; DetokenizeRequest {"model", "tokens"} -> DetokenizeResponse {"prompt"}.
    - TGI (huggingface/text-generation-inference router/src/server.rs `tokenize`, path "/tokenize",
      body a GenerateRequest; SimpleToken in router/src/lib.rs): {"inputs": "..."} -> a list of
      {"id", "text", "start", "stop"}, offsets into the input; no detokenize. Special tokens the
      server adds (offsets (0, 0)) are not counted; prompts are built from text, cut at the
      offsets (`prefix`), since ids cannot be turned back into text.
    """

    def __init__(self, url: str, model: str, headers: dict[str, str] | None = None, kind: str = "vLLM"):
        from bench.targets.endpoint.http import root_url

        self.root, self.model, self.headers, self.kind = root_url(url), model, dict(headers or {}), kind
        self.decodes = kind == "vLLM"
        self._client = None
        self._pid = 0
        self._spans: dict[str, list[tuple[int, int]]] = {}  # TGI: the last texts' token offsets

    @property
    def label(self) -> str:
        return f"server:/tokenize ({self.kind})"

    @classmethod
    def probe(cls, url: str, model: str, headers: dict[str, str] | None = None) -> ServerTokenizer | None:
        """The server's tokenizer when `/tokenize` answers in vLLM's or TGI's shape, else None."""
        for kind in ("vLLM", "TGI"):
            tok = cls(url, model, headers, kind)
            try:
                if tok.encode("hello world"):
                    return tok
            except Exception:  # noqa: BLE001 - no route, another shape, no answer: not this kind
                continue
        return None

    def _post(self, path: str, body: dict[str, Any]):
        import os

        import httpx

        if self._client is None or self._pid != os.getpid():  # never a pool shared across a fork
            self._client = httpx.Client(headers=self.headers,
                                        timeout=httpx.Timeout(TOKENIZE_TIMEOUT_S, connect=5.0))
            self._pid = os.getpid()
        resp = self._client.post(self.root + path, json=body)
        resp.raise_for_status()
        return resp.json()

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        if self.kind == "vLLM":
            out = self._post("/tokenize", {"model": self.model, "prompt": text,
                                           "add_special_tokens": add_special_tokens})
            return [int(i) for i in out["tokens"]]
        toks = self._post("/tokenize", {"inputs": text})
        spans = [(int(t["start"]), int(t["stop"])) for t in toks]
        real = [i for i, (a, b) in enumerate(spans) if b > a] if any(b > a for a, b in spans) else range(len(toks))
        keep = [toks[i] for i in real] if not add_special_tokens else toks
        if len(self._spans) > 64:
            self._spans.clear()
        self._spans[text] = [(int(t["start"]), int(t["stop"])) for t in keep]
        return [int(t["id"]) for t in keep]

    def decode(self, ids: list[int]) -> str:
        if not self.decodes:
            raise NotImplementedError("TGI has no /detokenize")
        return str(self._post("/detokenize", {"model": self.model, "tokens": [int(i) for i in ids]})["prompt"])

    def prefix(self, text: str, ids: list[int], k: int) -> str:
        """The text of the first `k` of `ids`, the encoding of `text`."""
        if self.decodes:
            return self.decode(ids[:k])
        if text not in self._spans:
            self.encode(text)
        spans = self._spans[text]
        return text[:spans[k - 1][1]] if k > 0 else ""

    def sample_ids(self) -> list[int]:
        return sorted(set(self.encode(" ".join(SEED_WORDS)) + self.encode(" " + " ".join(SEED_WORDS))))


def resolve(spec, model: str):
    """(tokenizer, what to record as `prompt_tokenizer`) for an endpoint: `--tokenizer DIR`; else
    `model` from a local directory or the hub cache; else the server's /tokenize. UsageError
    (one line) when none of them is there."""
    import os

    if spec.tokenizer:
        return load_tokenizer(spec.tokenizer), spec.tokenizer
    try:
        return load_tokenizer(model), model
    except UsageError as local:
        key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        server = ServerTokenizer.probe(spec.url, model, {"Authorization": f"Bearer {key}"} if key else {})
        if server is None:
            raise UsageError(f"{str(local).split('; give')[0]}, and the server has no POST /tokenize to "
                             "build the prompts with; give --tokenizer DIR, a local directory holding it") from None
        return server, server.label


# -- synthetic prompts -----------------------------------------------------------------------

FILLERS = tuple(" " + c for c in "abcdefghijklmnopqrstuvwxyz0123456789") + tuple(",.;:!?-") + \
    tuple("abcdefghijklmnopqrstuvwxyz")  # padding that may take one token each, tried in order
MAX_CUT_BACK = 64  # the most prefixes tried when a text re-encodes too long
SERVER_TAIL_TRIES = 256  # the vocabulary tokens tried as the last one through a server (one call each)


def synthetic(tokenizer, n: int, seq_len: int, output_len: int, seed: int = SEED) -> list[Prompt]:
    """`n` prompts of exactly `seq_len` tokens each (the nearest reachable length where no text
    has exactly that many: `Prompt.tokens` says which)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if hasattr(tokenizer, "sample_ids"):
        vocab = np.array(tokenizer.sample_ids(), dtype=np.int64)
    else:
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        vocab = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
    if vocab.size == 0:
        raise UsageError("the tokenizer has no ordinary tokens to build prompts from")
    out = []
    for _ in range(n):
        text, got = _one(tokenizer, rng, vocab, seq_len)
        out.append(Prompt(text, got, output_len))
    return out


def _one(tokenizer, rng, vocab, seq_len: int) -> tuple[str, int]:
    """One prompt: random ids decoded and encoded again (a few tries), then `_repair`."""
    best: tuple[int, str, int] | None = None  # (distance, text, tokens)
    if getattr(tokenizer, "decodes", True):
        ids = rng.choice(vocab, size=seq_len).tolist()
        for _ in range(MAX_TRIES):
            text = tokenizer.decode(ids)
            again = tokenizer.encode(text, add_special_tokens=False)
            if len(again) == seq_len:
                return text, seq_len
            best = _nearer(best, text, len(again), seq_len)
            # too long: cut; too short: top up with fresh tokens; then decode again
            ids = again[:seq_len] + rng.choice(vocab, size=max(0, seq_len - len(again))).tolist()
    else:  # no decode (TGI): random words, cut at the token offsets
        text = ""
        for _ in range(MAX_TRIES):
            again = tokenizer.encode(text, add_special_tokens=False) if text else []
            if len(again) == seq_len:
                return text, seq_len
            if text:
                best = _nearer(best, text, len(again), seq_len)
            if len(again) > seq_len:
                text = tokenizer.prefix(text, again, seq_len)
            else:
                words = rng.choice(len(SEED_WORDS), size=seq_len - len(again) + 1)
                text += "".join((" " if text or j else "") + SEED_WORDS[w] for j, w in enumerate(words))
    assert best is not None
    return _repair(tokenizer, best[1], seq_len, vocab, best)


def _nearer(best, text: str, got: int, want: int):
    cand = (abs(got - want), text, got)
    return cand if best is None or cand[0] < best[0] else best


def _prefix(tokenizer, text: str, ids: list[int], k: int) -> str:
    return tokenizer.prefix(text, ids, k) if hasattr(tokenizer, "prefix") else tokenizer.decode(ids[:k])


def _repair(tokenizer, text: str, want: int, vocab, best) -> tuple[str, int]:
    """Exactly `want` tokens at the token level, from a text near it (see the module docstring)."""

    def count(t: str) -> int:
        return len(tokenizer.encode(t, add_special_tokens=False)) if t else 0

    ids = tokenizer.encode(text, add_special_tokens=False)
    base, have = text, len(ids)
    if have > want:  # cut back: the longest prefix of the ids that re-encodes to at most `want`
        base, have = "", 0
        for k in range(want, max(-1, want - MAX_CUT_BACK), -1):
            t = _prefix(tokenizer, text, ids, k)
            got = count(t)
            if got == want:
                return t, want
            best = _nearer(best, t, got, want)
            if got < want:
                base, have = t, got
                break
    # pad: the same filler `want - have` times, one that starts a pre-token of its own ...
    for filler in FILLERS:
        t = base + filler * (want - have)
        got = count(t)
        if got == want:
            return t, want
        best = _nearer(best, t, got, want)
    # ... or one filler at a time, each the first that adds a token without overshooting
    t, got = base, have
    while got < want:
        for filler in FILLERS:
            g = count(t + filler)
            if got < g <= want:
                t, got = t + filler, g
                break
        else:
            break
    if got == want:
        return t, want
    best = _nearer(best, t, got, want)
    # last: every vocabulary token as the tail of the first `want - 1` tokens of the nearest text
    if getattr(tokenizer, "decodes", True) and want > 0:
        head = tokenizer.encode(best[1], add_special_tokens=False)[:want - 1]
        tails = vocab if not isinstance(tokenizer, ServerTokenizer) else vocab[:SERVER_TAIL_TRIES]
        for tail in tails.tolist():
            t = tokenizer.decode(head + [tail])
            got = count(t)
            if got == want:
                return t, want
            best = _nearer(best, t, got, want)
    return best[1], best[2]


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
