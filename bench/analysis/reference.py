"""A run against published figures (the Neuron team's tables, or any CSV of the same shape).

Rows are matched on model and batch size; a figure is comparable when instance type, target,
input shape and precision match wherever the table states them.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.analysis.estimate import METRICS, SEED, estimate, row_rng
from bench.analysis.samples import PooledCell, Samples, load_side, to_float
from bench.errors import UsageError

# Accepted spellings of reference-table columns (after lower-casing, and turning spaces,
# dots, dashes, slashes and brackets into underscores). The Neuron documentation's data files
# spell them `Inst. Type`, `Throughput (inference/second)` (or `/sec`), `Latency P50 (ms)`,
# `Batch Size`, `Sequence Length`, `Image Size`, `Neuron Version`,
# `Compilation Autocast Data Type`.
REFERENCE_ALIASES: dict[str, tuple[str, ...]] = {
    "model": ("model", "model_name", "name", "model_id"),
    "instance": ("instance", "instance_type", "inst_type", "instance_name"),
    "batch_size": ("batch_size", "batch", "bs"),
    "seq_len": ("seq_len", "sequence_length", "seqlen", "seq", "sequence_len"),
    "image_size": ("image_size", "img_size", "resolution", "image_resolution"),
    "precision": ("dtype", "auto_cast", "autocast", "precision", "data_type", "cast",
                  "compilation_autocast_data_type", "autocast_data_type", "auto_cast_data_type"),
    "target": ("target", "device"),
    "scenario": ("scenario", "optimized_for", "mode"),
    "throughput": ("throughput", "throughput_avg", "samples_per_s", "samples_s", "throughput_samples_s",
                   "inf_s", "throughput_inf_s", "throughput_seq_s", "throughput_img_s",
                   "throughput_inference_second", "throughput_inference_sec", "throughput_inference_s",
                   "throughput_inferences_second", "throughput_inferences_sec", "throughput_inf_sec",
                   "performance_seq_sec"),
    "p50": ("p50", "p50_ms", "latency_p50", "latency_ms_p50", "latency_p50_ms", "p50_latency_ms"),
    "p99": ("p99", "p99_ms", "latency_p99", "latency_ms_p99", "latency_p99_ms", "p99_latency_ms"),
    "sdk_version": ("sdk_version", "sdk", "neuron_sdk", "neuron_sdk_version", "neuron_version"),
    "source_url": ("source_url", "source", "url"),
}


def column_name(text: str) -> str:
    """A header as REFERENCE_ALIASES spells it: 'Inst. Type' -> 'inst_type'."""
    name = re.sub(r"[\s\-/().\[\]]+", "_", text.strip().lower()).strip("_")
    return re.sub(r"_+", "_", name)


def canonical_columns(fieldnames: Iterable[str]) -> dict[str, str]:
    """Each raw header -> its canonical name (REFERENCE_ALIASES), else its column_name();
    the first column with a canonical meaning wins it."""
    canonical: dict[str, str] = {}
    for raw in fieldnames:
        name = column_name(raw or "")
        for canon, aliases in REFERENCE_ALIASES.items():
            if name in aliases and canon not in canonical.values():
                canonical[raw] = canon
                break
        else:
            canonical[raw] = name
    return canonical


def read_table(path: Path, what: str = "reference table") -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(raw header, [(line number, {canonical column: text})]) of a CSV file: '#' lines and
    blank lines skipped, cells stripped. UsageError (one line) when the file cannot be read,
    is not a CSV or has no model column; checking the figure columns is the caller's part."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None
    if "\0" in text:
        raise UsageError(f"{path}: not a CSV file (binary content)")
    numbered = [(n, ln) for n, ln in enumerate(text.splitlines(), 1)
                if ln.strip() and not ln.lstrip().startswith("#")]
    if not numbered:
        raise UsageError(f"{path}: empty {what}")
    try:
        header = next(csv.reader([numbered[0][1]]))
        records = list(csv.reader(ln for _, ln in numbered[1:]))
    except csv.Error as exc:
        raise UsageError(f"{path}: not a CSV file ({exc})") from None
    if len(header) < 2:
        raise UsageError(f"{path}: not a CSV file (its first line has no comma-separated columns)")
    canonical = canonical_columns(header)
    if "model" not in canonical.values():
        shown = ", ".join(h.strip() for h in header[:20]) + (", ..." if len(header) > 20 else "")
        raise UsageError(f"{path}: a {what} needs a 'model' column (has: {shown})")
    names = [canonical[h] for h in header]
    out = [(n, {name: cell.strip() for name, cell in zip(names, rec)})
           for (n, _), rec in zip(numbered[1:], records)]
    return header, out


def find_reference(name_or_path: str | Path) -> Path:
    """A CSV path, or a name in results/reference/ ('neuron-published' -> neuron-published.csv)."""
    from bench.paths import reference_dir

    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = reference_dir() / f"{name_or_path}.csv"
    if candidate.is_file():
        return candidate
    if path.suffix or "/" in str(name_or_path):
        raise UsageError(f"reference table not found: {name_or_path}")
    known = sorted(p.stem for p in reference_dir().glob("*.csv")) if reference_dir().is_dir() else []
    raise UsageError(f"unknown reference {str(name_or_path)!r} (known: {', '.join(known) or 'none'}; "
                     "or give a CSV path)")


def load_reference(name_or_path: str | Path) -> list[dict[str, Any]]:
    """Read a published-figures CSV into rows with canonical names (see REFERENCE_ALIASES).

    Tolerant by design: column names are matched case-insensitively with their usual
    spellings (`instance_type` or `Inst. Type`, `dtype` or `auto-cast`, `p50 (ms)`,
    `Neuron Version` ...), so one of the Neuron documentation's data files loads as it is;
    unknown columns are kept (named as column_name() spells them); numbers may carry
    thousands separators; lines starting with '#' are comments. Instance types are
    lower-cased ('Inf2.xlarge'), an SDK version without a patch number gets '.0', an image
    size '224x224' reads as 224. Only `model` is required, plus at least one of
    throughput / p50 / p99. Latencies are in ms, throughput in samples (inputs) per second.
    """
    path = find_reference(name_or_path)
    header, records = read_table(path)
    if not {"throughput", "p50", "p99"} & set(canonical_columns(header).values()):
        raise UsageError(f"{path}: a reference table needs a throughput, p50 or p99 column")
    out = []
    for n, rec in records:
        row: dict[str, Any] = {"_line": n, "_source": str(path), **rec}
        if "instance" in row:
            row["instance"] = row["instance"].lower()
        if "sdk_version" in row:
            row["sdk_version"] = sdk_version_text(row["sdk_version"])
        for col in ("batch_size", "seq_len"):
            row[col] = _int_or_none(row.get(col))
        row["image_size"] = parse_size(row.get("image_size"))
        for col in ("throughput", "p50", "p99"):
            row[col] = float_or_nan(row.get(col))
        if row.get("model"):
            out.append(row)
    return out


def sdk_version_text(v: Any) -> str:
    """'2.21' -> '2.21.0' (the data files write both); anything else as it is, stripped."""
    text = str(v or "").strip()
    return f"{text}.0" if re.fullmatch(r"\d+\.\d+", text) else text


def parse_size(v: Any) -> int | str | None:
    """An image size: '224' or '224x224' -> 224; another shape ('16x224x224', '936x624') stays
    text, so it differs from any square size; empty -> None."""
    text = str(v or "").strip().lower().replace(" ", "")
    if not text:
        return None
    dims = text.split("x")
    if all(d.isdigit() for d in dims) and len(set(dims)) == 1:
        return int(dims[0])
    n = _int_or_none(text)
    return n if n is not None else str(v).strip()


def _int_or_none(v: Any) -> int | None:
    f = float_or_nan(v)
    return int(f) if math.isfinite(f) else None


def float_or_nan(v: Any) -> float:
    """A number as the tables write it ('1,234.5', '1_000'), else nan."""
    if v is None:
        return math.nan
    try:
        return float(str(v).replace(",", "").replace("_", "").strip())
    except ValueError:
        return math.nan


def _model_name(name: Any) -> str:
    return str(name).strip().lower().rsplit("/", 1)[-1]


def precision_label(row: dict[str, Any]) -> str:
    """The effective precision of a run row: 'matmult-bf16' when neuronx-cc auto-casts, a train
    row's precision (amp-bf16 ...), else dtype."""
    if row.get("precision") and str(row["precision"]) != "auto-cast":
        return str(row["precision"]).lower()
    args = str(row.get("compiler_args") or "")
    mode = re.search(r"--auto-cast[= ](\w+)", args)
    kind = re.search(r"--auto-cast-type[= ](\w+)", args)
    if mode and mode.group(1) != "none":
        return f"{mode.group(1)}-{kind.group(1) if kind else 'bf16'}".lower()
    return str(row.get("dtype") or "fp32").lower()


def norm_precision(text: Any) -> str:
    """A precision as tables spell it ('Matmult-BF16', 'None', 'bfloat16') -> 'matmult-bf16', 'fp32', 'bf16'."""
    t = re.sub(r"[\s_]+", "-", str(text).strip().lower())
    t = t.replace("auto-cast-", "").replace("autocast-", "")
    if t in ("none", "fp32-none", "float32"):
        return "fp32"
    return {"bfloat16": "bf16", "float16": "fp16", "matmul-bf16": "matmult-bf16"}.get(t, t)


@dataclass
class RefRow:
    key: dict[str, Any]
    ref: dict[str, Any] | None
    mismatches: list[str]
    run: dict[str, float]  # throughput, p50, p99 of the run
    run_ci: dict[str, tuple[float, float]]
    stability: str = ""

    @property
    def comparable(self) -> bool:
        return self.ref is not None and not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        ref = self.ref or {}
        d = dict(self.key)
        d["precision"] = self.key.get("precision")
        for m in ("throughput", "p50", "p99"):
            run, pub = self.run.get(m, math.nan), to_float(ref.get(m))
            d[f"{m}_run"] = run
            d[f"{m}_published"] = pub
            d[f"{m}_ratio"] = run / pub if pub and math.isfinite(pub) and math.isfinite(run) else math.nan
        d.update(instance_published=ref.get("instance"), sdk_version=ref.get("sdk_version"),
                 source_url=ref.get("source_url"), comparable=self.comparable,
                 not_comparable=", ".join(self.mismatches), stability=self.stability)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def compare_reference(run_paths: str | Path | Iterable[str | Path], reference: str | Path,
                      seed: int = SEED) -> tuple[list[RefRow], list[dict[str, Any]]]:
    """Each run cell against the published figure for the same model and batch size.

    Returns (rows, cells without any published figure for their model and batch size).
    A figure is comparable when instance type, target (default `neuron`), input shape and
    precision (dtype, or neuronx-cc --auto-cast mode and type) match wherever the table
    states them; otherwise the row is marked "not comparable" with the differences named.
    When the table states a scenario, a figure for another scenario is not comparable either.
    Among several candidates the one with the fewest differences is shown.
    """
    refs = load_reference(reference)
    side = load_side(run_paths, "run")
    rows: list[RefRow] = []
    missing: list[dict[str, Any]] = []
    by_model: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in refs:
        by_model.setdefault((_model_name(r["model"]), r.get("batch_size")), []).append(r)
    for cell in side.cells.values():
        if not cell.usable:
            continue
        first = cell.first
        key = dict(cell.key, precision=precision_label(first), instance=first.get("instance_type") or "")
        cands = by_model.get((_model_name(key["model"]), key.get("batch_size")), []) + \
            by_model.get((_model_name(key["model"]), None), [])
        if not cands:
            missing.append(cell.key)
            continue
        scored = sorted(((_mismatches(key, first, c), i, c) for i, c in enumerate(cands)), key=lambda t: (len(t[0]), t[1]))
        mism, _, best = scored[0]
        run, run_ci = _run_figures(cell, seed)
        rows.append(RefRow(key, best, mism, run, run_ci, cell.stability()))
    return rows, missing


def _mismatches(key: dict[str, Any], row: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    out = []
    inst = str(ref.get("instance") or "")
    if inst and inst.lower() != str(key.get("instance") or "").lower():
        out.append(f"instance {key.get('instance') or 'not EC2'} vs published {inst}")
    scenario = str(ref.get("scenario") or "").lower()
    if scenario and scenario != str(key.get("scenario") or "").lower():
        out.append(f"scenario {key.get('scenario')} vs published {scenario}")
    target = str(ref.get("target") or "neuron").lower()
    if target != str(key.get("target") or "").lower():
        out.append(f"target {key.get('target')} vs published {target}")
    for col, what in (("seq_len", "seq"), ("image_size", "image")):
        if ref.get(col) is not None and ref.get(col) != key.get(col):
            out.append(f"{what} {key.get(col)} vs published {ref.get(col)}")
    for col in ("grad_accum", "dp"):  # a training figure: its steps' shape
        if _int_or_none(ref.get(col)) is not None and _int_or_none(ref.get(col)) != _int_or_none(row.get(col)):
            out.append(f"{col} {row.get(col)} vs published {ref.get(col)}")
    if ref.get("optimizer") and str(ref["optimizer"]).lower() != str(row.get("optimizer") or "").lower():
        out.append(f"optimizer {row.get('optimizer')} vs published {ref['optimizer']}")
    if ref.get("precision"):
        pub = norm_precision(ref["precision"])
        if pub != norm_precision(key["precision"]):
            out.append(f"precision {key['precision']} vs published {pub}")
    return out


def _run_figures(cell: PooledCell, seed: int) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    samples = Samples(cell)
    run: dict[str, float] = {}
    ci: dict[str, tuple[float, float]] = {}
    for name in ("throughput", "p50", "p99"):
        m = METRICS[name]
        e = estimate(samples, m, row_rng(cell.key, name, seed))
        if e is None:
            run[name] = to_float(cell.first.get(m.column))
            continue
        run[name] = e.value
        if e.draws is not None:
            lo, hi = np.percentile(e.draws, [2.5, 97.5])
            ci[name] = (float(lo), float(hi))
    return run, ci
