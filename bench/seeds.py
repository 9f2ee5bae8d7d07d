"""seeds/: proof that two machines measured the same model.

Weights are seeded random, so "comparable across machines" rests on every machine building
the same weights from the same card. Each card has `seeds/<card>.npz` (scripts/make_seeds.py
writes them): its fixed-seed example inputs at the card's default shape and batch 1, the
eager fp32 output on them (the whole output when it is small, e.g. every tiny card and every
classification head; else its size, norm, mean and first values), and the weights'
fingerprint. Every row records `model_fingerprint` (a hash of the built weights); `compare`
names the cells whose fingerprints differ; the accuracy check takes the stored output as its
reference when the fingerprint and the shape match, instead of computing one on the host.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.paths import seeds_dir

FULL_OUTPUT_BYTES = 256 * 1024  # store the whole output up to this size, a summary beyond
HEAD = 16  # first output values kept in a summary


def fingerprint(module) -> str:
    """A hash of a module's weights (names, dtypes, shapes, values): equal iff the weights are."""
    h = hashlib.sha1()
    for name, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
        h.update(data.view(-1).view(dtype=_byte_dtype()).numpy().tobytes() if data.numel() else b"")
    return h.hexdigest()[:16]


def _byte_dtype():
    import torch

    return torch.uint8


@dataclass(frozen=True)
class Seed:
    """One card's stored inputs and reference (see the module docstring)."""

    card: str
    meta: dict[str, Any]
    inputs: tuple[np.ndarray, ...]
    output: np.ndarray | None  # None: only a summary is stored
    summary: dict[str, Any]

    def matches(self, fingerprint_: str, batch_size: int, seq_len: int | None, image_size: int | None) -> bool:
        m = self.meta
        return (m.get("fingerprint") == fingerprint_ and m.get("batch_size") == batch_size
                and m.get("seq_len") == seq_len and m.get("image_size") == image_size)


def path_of(card: str) -> Path | None:
    d = seeds_dir()
    return d / f"{card}.npz" if d is not None else None


def load(card: str) -> Seed | None:
    """The stored seed of a card, or None when there is none."""
    path = path_of(card)
    if path is None or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        inputs = tuple(data[f"input_{i}"] for i in range(int(meta.get("n_inputs", 0))))
        output = data["output"] if "output" in data.files else None
    return Seed(card, meta, inputs, output, dict(meta.get("output_summary") or {}))


def summarise_output(output: np.ndarray) -> dict[str, Any]:
    x = np.asarray(output, dtype=np.float64).ravel()
    return {"size": int(x.size), "norm": float(np.linalg.norm(x)), "mean": float(x.mean()) if x.size else 0.0,
            "head": [float(v) for v in x[:HEAD]]}


def save(card: str, meta: dict[str, Any], inputs: tuple[np.ndarray, ...], output: np.ndarray, out_dir: Path) -> Path:
    """Write seeds/<card>.npz: inputs, the output (or its summary) and the metadata."""
    arrays = {f"input_{i}": np.asarray(t) for i, t in enumerate(inputs)}
    out = np.asarray(output, dtype=np.float32)
    meta = dict(meta, n_inputs=len(inputs), output_summary=summarise_output(out))
    if out.nbytes <= FULL_OUTPUT_BYTES:
        arrays["output"] = out
    path = Path(out_dir) / f"{card}.npz"
    np.savez_compressed(path, meta=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)
    return path


def agrees(seed: Seed, output: np.ndarray, rel: float = 1e-4) -> tuple[bool, str]:
    """Whether an eager fp32 output is the stored one (all of it, or its summary), and why not."""
    out = np.asarray(output, dtype=np.float64).ravel()
    if seed.output is not None:
        ref = seed.output.astype(np.float64).ravel()
        if ref.shape != out.shape:
            return False, f"output has {out.size} values, the seed {ref.size}"
        scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
        err = float(np.max(np.abs(out - ref))) if ref.size else 0.0
        return err <= rel * scale, f"max abs err {err:.3g} vs the seed (allowed {rel * scale:.3g})"
    s, mine = seed.summary, summarise_output(out)
    if s.get("size") != mine["size"]:
        return False, f"output has {mine['size']} values, the seed {s.get('size')}"
    close = abs(mine["norm"] - s["norm"]) <= rel * max(1.0, s["norm"]) and np.allclose(
        mine["head"], s["head"], rtol=rel, atol=rel * max(1.0, s["norm"]) / max(1, s["size"]) ** 0.5)
    return bool(close), f"norm {mine['norm']:.6g} vs the seed's {s['norm']:.6g}"
