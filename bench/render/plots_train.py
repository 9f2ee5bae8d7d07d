"""The report's training plot: each train cell's samples/s (95 % interval over its rounds) and
its MFU where a peak is known (docs: Training steps). Step time is the table's p50."""

from __future__ import annotations

import math
from typing import Any

from bench.plan.cell import cell_label
from bench.render.plots import png_bytes, pyplot


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def training(rows: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    train = [r for r in rows if r.get("scenario") == "train" and _num(r.get("samples_per_s"))]
    if not train:
        return []
    plt = pyplot()
    with_mfu = [r for r in train if _num(r.get("mfu_pct")) is not None]
    panels = 2 if with_mfu else 1
    height = max(2.5, 0.45 * len(train) + 1.5)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, height), squeeze=False)
    runs = {r.get("_run") for r in train}
    labels = [cell_label(r) + (f" [{r.get('_run')}]" if len(runs) > 1 else "") for r in train]  # which run
    y = list(range(len(train)))
    rate = [_num(r["samples_per_s"]) for r in train]
    lo = [max(0.0, v - (_num(r.get("throughput_ci_low")) or v)) for v, r in zip(rate, train)]
    hi = [max(0.0, (_num(r.get("throughput_ci_high")) or v) - v) for v, r in zip(rate, train)]
    ax = axes[0][0]
    colors = ["tab:red" if r.get("status") == "unstable" else "tab:blue" for r in train]
    ax.barh(y, rate, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("samples/s (global batch per optimizer step)")
    ax.grid(True, axis="x", alpha=0.3)
    if with_mfu:
        ax2 = axes[0][1]
        mfu = [_num(r.get("mfu_pct")) or 0.0 for r in train]
        ax2.barh(y, mfu, color="tab:green")
        ax2.set_yticks(y)
        ax2.set_yticklabels([])
        ax2.invert_yaxis()
        ax2.set_xlabel("MFU % (of the devices' dense peak; empty where none is known)")
        ax2.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Training steps", fontsize=12)
    caption = ("Samples per second over each round's synced window, pooled over rounds, with the 95% interval "
               "over the rounds (red: an unstable cell); MFU where the device's peak is known (bench/targets/peaks.py).")
    return [("Training steps", caption, png_bytes(plt, fig))]
