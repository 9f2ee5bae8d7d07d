"""One number format and the small text helpers every table and report shares."""

from __future__ import annotations

import math
from typing import Any


def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_num(v: Any, digits: int | None = None) -> str:
    if missing(v):
        return ""
    v = float(v)
    if digits is None:  # 3 significant figures, as a latency wants
        digits = max(0, 2 - int(math.floor(math.log10(abs(v))))) if v else 0
    return f"{v:.{digits}f}"


def fmt_p50_ci(row: dict[str, Any], p: str) -> str:
    mid = row.get(f"latency_ms_{p}")
    if missing(mid):
        return ""
    lo, hi = row.get(f"latency_ms_{p}_ci_low"), row.get(f"latency_ms_{p}_ci_high")
    if missing(lo) or missing(hi) or not mid:
        return fmt_num(mid)
    half = max(mid - lo, hi - mid) / mid
    return f"{fmt_num(mid)} ±{half:.1%}"


def shape_text(row: dict[str, Any]) -> str:
    if not missing(row.get("seq_len")):
        return f"seq {int(row['seq_len'])}"
    if not missing(row.get("image_size")):
        return f"{int(row['image_size'])}px"
    return ""


def is_numeric(values: list[str]) -> bool:
    def isfmt_num(v: str) -> bool:
        try:
            float(v.split(" ")[0].rstrip("M"))
            return True
        except ValueError:
            return False

    present = [v for v in values if v]
    return bool(present) and all(isfmt_num(v) for v in present)


def fmt_value(v: float, unit: str = "") -> str:
    """3 significant figures (at least integer digits), with the unit."""
    if v is None or not math.isfinite(v):
        return ""
    if v == 0:
        text = "0"
    else:
        digits = max(0, 2 - int(math.floor(math.log10(abs(v)))))
        text = f"{v:.{digits}f}"
    return f"{text} {unit}".strip() if unit and unit != "samples/s" else (f"{text}/s" if unit else text)


def fmt_ratio(v: float) -> str:
    return f"{v:.3f}" if v is not None and math.isfinite(v) else ""


def fmt_ci(lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return f"[{lo:.3f}, {hi:.3f}]"


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return ""
    return "<1e-6" if p < 1e-6 else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")
