"""The Neuron documentation's published data files -> rows of a reference table.

The inference pages of the Neuron docs (about-neuron/benchmarks/inf2/inf2-performance.rst,
trn1/trn1-inference-performance.rst in github.com/aws-neuron/aws-neuron-sdk) render CSV files
that sit beside them (latency_data_encoder.csv, throughput_data_vision_cnn.csv ...).
`import_published` reads one of those files as it is and gives rows in the layout of
results/reference/neuron-published.csv (TABLE_COLUMNS); `write_reference` writes them as a
plain CSV. The figures are the Neuron team's, not measured by trnbench.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

from bench.analysis.published_train import is_training_file, training_row
from bench.analysis.reference import (
    canonical_columns,
    float_or_nan,
    norm_precision,
    parse_size,
    read_table,
    sdk_version_text,
)
from bench.errors import UsageError

# The columns of results/reference/neuron-published.csv, in order.
TABLE_COLUMNS: tuple[str, ...] = (
    "model", "instance_type", "target", "scenario", "batch_size", "seq_len", "image_size", "precision",
    "compiler_args", "n_models", "workers_per_model", "throughput_avg", "latency_ms_p50", "latency_ms_p99",
    "sdk_version", "framework", "published_model", "published_task", "application_type", "source_url",
    "data_file", "note",
)

DOCS = "https://awsdocs-neuron.readthedocs-hosted.com/en/latest/about-neuron/benchmarks"
# The page that renders the data files of each folder of about-neuron/benchmarks/.
PAGES: dict[str, str] = {
    "inf2": f"{DOCS}/inf2/inf2-performance.html",
    "trn1": f"{DOCS}/trn1/trn1-inference-performance.html",
}
# The `Scripts` column's :benchmark-pt:`Benchmark <NAME>` is NAME_benchmark.py here (conf.py's
# extlink; the folder since SDK 2.29, before that src/benchmark/pytorch).
SCRIPTS_DIR = "archive/src/benchmark/pytorch"
# Compiler flags a benchmark script passes besides the auto-cast (hf-google-vit_benchmark.py:
# torch_neuronx.trace(..., compiler_args="--model-type=transformer")).
SCRIPT_COMPILER_ARGS: dict[str, str] = {"hf-google-vit": "--model-type=transformer"}
# `Compilation Autocast Data Type` -> neuronx-cc flag (since SDK 2.27 the default is none, so
# the flag is explicit).
AUTO_CAST_ARGS: dict[str, str] = {"matmult-bf16": "--auto-cast=matmult", "fp32": "--auto-cast=none"}
HISTORY_NOTE = ("historical figure: since SDK 2.29 the page (not itself archived) marks its benchmark "
                "scripts as historical reference only, not tested with recent SDKs; this one moved to {script}")
# NeuronPerf, which the scripts benchmark with, tries n_models 1 and the most the instance takes (2
# NeuronCores on an inf2.xlarge or trn1.2xlarge) and workers_per_model 1 and 2
# (archive/neuronperf/neuronperf_benchmark_guide.rst): requests in flight 1, 2 or 4.
IN_FLIGHT = (1, 2, 4)


class PublishedRows(list):
    """The rows `import_published` could map (a list of dicts in TABLE_COLUMNS order), and
    `.skipped`: one {"line", "model", "reason"} for each row it could not."""

    def __init__(self, rows: list[dict[str, Any]], skipped: list[dict[str, Any]]):
        super().__init__(rows)
        self.skipped = skipped


def card_names() -> dict[str, str]:
    """Published spelling (lower-case) -> model card name: each card's name, its `pretrained`
    id and that id's last part ('google/vit-base-patch16-224', 'vit-base-patch16-224').
    Tiny cards are left out. The cards are bench.models' (this layer may read them)."""
    from bench import models

    out: dict[str, str] = {}
    for card in sorted(models.registry().values(), key=lambda c: c.name):
        if card.tiny:
            continue
        pretrained = str(card.pretrained or "")
        for spelling in (card.name, pretrained, pretrained.rsplit("/", 1)[-1]):
            if spelling:
                out.setdefault(spelling.lower(), card.name)
    return out


def import_published(path: str | Path, *, data_file: str | None = None,
                     source_url: str | None = None) -> PublishedRows:
    """Rows of a reference table from one of the Neuron docs' inference data files, read as it is.

    Each row maps the published model name to a trnbench card (see card_names()); rows whose
    model has no card, or that lack a batch size or a throughput, or have a shape or
    auto-cast trnbench cannot run, go to `.skipped` with the reason. The figures (throughput,
    p50, p99) are the file's text, verbatim; batch_size, seq_len, image_size, n_models and
    workers_per_model are ints (None when not stated). n_models x workers_per_model (requests
    in flight, not published) is what throughput x p50 / batch implies, when that is 1, 2 or 4.
    `data_file` (the file's path in aws-neuron-sdk) defaults to the path from 'about-neuron/'
    on, or about-neuron/benchmarks/<folder>/<name> when the folder is inf2 or trn1;
    `source_url` defaults to the page of that folder. UsageError: not a CSV, or no model,
    batch size or throughput column.
    """
    path = Path(path)
    what = "Neuron published data file"
    header, records = read_table(path, what)
    columns = set(canonical_columns(header).values())
    if is_training_file(columns):  # trn1's training figures (bench.analysis.published_train)
        names, data_file = card_names(), data_file or _data_file(path)  # once, not per record
        return _import_rows(records, lambda rec: training_row(rec, names, data_file, source_url or ""))
    for need, spelled in (("batch_size", "Batch Size"), ("throughput", "Throughput (inference/second)")):
        if need not in columns:
            raise UsageError(f"{path}: a {what} needs a {spelled!r} column (has: {', '.join(header)})")
    data_file = data_file or _data_file(path)
    folder = data_file.split("/")[-2] if "/" in data_file else ""
    source_url = source_url if source_url is not None else PAGES.get(folder, "")
    names = card_names()
    return _import_rows(records, lambda rec: _row(rec, names, data_file, source_url))


def _import_rows(records, convert) -> PublishedRows:
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for line, rec in records:
        published = rec.get("model", "")
        if not published:
            continue
        try:
            rows.append(convert(rec))
        except ValueError as exc:
            skipped.append({"line": line, "model": published, "reason": str(exc)})
    return PublishedRows(rows, skipped)


def _row(rec: dict[str, str], names: dict[str, str], data_file: str, source_url: str) -> dict[str, Any]:
    published = rec["model"]
    model = names.get(published.lower())
    if model is None:
        raise ValueError(f"no model card for {published!r}")
    batch = _int(rec.get("batch_size"))
    if batch is None or batch < 1:
        raise ValueError(f"batch size {rec.get('batch_size')!r} is not a positive integer")
    tput, p50 = float_or_nan(rec.get("throughput")), float_or_nan(rec.get("p50"))
    if not math.isfinite(tput) or tput <= 0:
        raise ValueError(f"throughput {rec.get('throughput')!r} is not a positive number")
    image = parse_size(rec.get("image_size"))
    if isinstance(image, str):
        raise ValueError(f"image size {image!r}: trnbench's image sizes are square")
    cast = rec.get("precision") or ""
    precision = norm_precision(cast) if cast else ""
    if precision and precision not in AUTO_CAST_ARGS:
        raise ValueError(f"auto-cast {cast!r} has no neuronx-cc flag here (known: Matmult-BF16, None)")
    script = re.search(r"<([^>]+)>", rec.get("scripts") or "")
    script_name = script.group(1).strip() if script else ""
    args = [SCRIPT_COMPILER_ARGS.get(script_name, ""), AUTO_CAST_ARGS.get(precision, "")]
    if precision == "fp32":
        precision = norm_precision(rec.get("model_data_type") or "fp32")
    n_models = workers = None
    in_flight = tput * p50 / 1000.0 / batch if math.isfinite(p50) else math.nan
    near = min(IN_FLIGHT, key=lambda k: abs(in_flight - k)) if math.isfinite(in_flight) else 0
    if near and abs(in_flight - near) <= 0.25 * near:
        n_models = min(near, 2)
        workers = near // n_models
    note = HISTORY_NOTE.format(script=f"{SCRIPTS_DIR}/{script_name}_benchmark.py" if script_name else SCRIPTS_DIR)
    if script_name in SCRIPT_COMPILER_ARGS:
        note += f"; that script passes {SCRIPT_COMPILER_ARGS[script_name]}"
    row = {
        "model": model,
        "instance_type": (rec.get("instance") or "").lower(),
        "target": "neuron",
        "scenario": "throughput",
        "batch_size": batch,
        "seq_len": _int(rec.get("seq_len")),
        "image_size": image,
        "precision": precision,
        "compiler_args": " ".join(a for a in args if a),
        "n_models": n_models,
        "workers_per_model": workers,
        "throughput_avg": rec.get("throughput", ""),
        "latency_ms_p50": rec.get("p50", ""),
        "latency_ms_p99": rec.get("p99", ""),
        "sdk_version": sdk_version_text(rec.get("sdk_version")),
        "framework": rec.get("framework", ""),
        "published_model": published,
        "published_task": rec.get("task", ""),
        "application_type": rec.get("application_type", ""),
        "source_url": source_url,
        "data_file": data_file,
        "note": note,
    }
    return row


def _int(v: Any) -> int | None:
    f = float_or_nan(v)
    return int(f) if math.isfinite(f) and f == int(f) else None


def _data_file(path: Path) -> str:
    parts = path.resolve().parts
    if "about-neuron" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("about-neuron"):])
    if path.resolve().parent.name in PAGES:
        return f"about-neuron/benchmarks/{path.resolve().parent.name}/{path.name}"
    return path.name


def write_reference(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as a plain CSV (no comment lines) in TABLE_COLUMNS order, then any other
    columns the rows carry (not those starting with '_'); None is written as an empty cell."""
    path = Path(path)
    extra = [k for r in rows for k in r if k not in TABLE_COLUMNS and not str(k).startswith("_")]
    fields = [*TABLE_COLUMNS, *dict.fromkeys(extra)]
    try:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            for r in rows:
                writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in fields})
    except OSError as exc:
        raise UsageError(f"cannot write reference table {path}: {exc}") from None
    return path
