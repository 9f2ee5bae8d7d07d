"""Compiled output vs the eager fp32 reference on the same fixed-seed inputs.

A cell whose output is outside its dtype's tolerance is recorded as `inaccurate`:
a fast wrong answer is not a result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    min_cosine: float
    max_rel_err: float  # max |out - ref| relative to max |ref| (floored at 1)


TOLERANCES = {
    "fp32": Tolerance(min_cosine=0.9999, max_rel_err=1e-3),
    "tf32": Tolerance(min_cosine=0.999, max_rel_err=2e-2),
    "bf16": Tolerance(min_cosine=0.99, max_rel_err=0.1),
    "fp16": Tolerance(min_cosine=0.995, max_rel_err=5e-2),
    "fp8": Tolerance(min_cosine=0.95, max_rel_err=0.25),
}


def compare(reference: np.ndarray, output: np.ndarray, dtype: str) -> dict[str, float | bool | str]:
    """max_abs_err, cosine and whether they are inside the tolerance for `dtype`."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    out = np.asarray(output, dtype=np.float64).ravel()
    tol = TOLERANCES.get(dtype, TOLERANCES["bf16"])
    if ref.shape != out.shape:
        return {"max_abs_err": float("nan"), "cosine": float("nan"), "accuracy_ok": False,
                "accuracy_error": f"output shape {output.shape} differs from reference {reference.shape}"}
    if not np.all(np.isfinite(out)):
        return {"max_abs_err": float("inf"), "cosine": float("nan"), "accuracy_ok": False,
                "accuracy_error": "output has NaN or Inf"}
    err = float(np.max(np.abs(out - ref))) if ref.size else 0.0
    norm = float(np.linalg.norm(ref) * np.linalg.norm(out))
    cosine = float(np.dot(ref, out) / norm) if norm > 0 else float(np.array_equal(ref, out))
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    ok = cosine >= tol.min_cosine and err <= tol.max_rel_err * scale
    msg = "" if ok else (f"output differs from eager fp32 beyond {dtype}'s tolerance: cosine {cosine:.6f} (min {tol.min_cosine}), "
                         f"max abs err {err:.3g} (max {tol.max_rel_err * scale:.3g})")
    return {"max_abs_err": err, "cosine": cosine, "accuracy_ok": ok, "accuracy_error": msg}
