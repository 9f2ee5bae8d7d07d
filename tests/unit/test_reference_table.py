"""results/reference/neuron-published.csv against the Neuron docs' data files, and the importer.

The data files live in github.com/aws-neuron/aws-neuron-sdk; CI has no copy of it, so each
figure is checked against verbatim excerpts of the files in tests/data/published/ (header
line plus the rows needed, byte for byte; see the README there for the source commit).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd
import pytest

from bench.analysis.published import TABLE_COLUMNS, card_names, import_published, write_reference
from bench.analysis.reference import (
    column_name,
    compare_reference,
    load_reference,
    sdk_version_text,
)
from bench.errors import UsageError
from bench.models import registry
from tests.support.compare import make_run
from tests.support.paths import DATA, ROOT

TABLE = ROOT / "results" / "reference" / "neuron-published.csv"
SIDECAR = TABLE.with_suffix(".md")
PUBLISHED = DATA / "published"
COPIES = sorted(p for p in PUBLISHED.glob("about-neuron/benchmarks/*/*.csv") if not p.name.startswith("training_"))
TRAIN_COPIES = sorted(PUBLISHED.glob("about-neuron/benchmarks/trn1/training_*.csv"))
TRAIN_TABLE = ROOT / "results" / "reference" / "neuron-published-train.csv"
FIGURES = ("throughput_avg", "latency_ms_p50", "latency_ms_p99")

# The figures as the issue gives them (rounded), each checked against the data file below.
ISSUE_FIGURES = [
    # instance, model, batch, throughput, p50, p99, SDK
    ("inf2.xlarge", "bert-base-uncased", 1, 1998.21, 0.99897, 1.04046, "2.26.0"),
    ("inf2.xlarge", "bert-base-uncased", 8, 2674.19, 5.97382, 6.17101, "2.27.0"),
    ("inf2.xlarge", "roberta-base", 1, 1989.26, 0.9995, 1.0910, "2.26.0"),
    ("inf2.xlarge", "roberta-base", 8, 2920.38, 5.42390, 5.82958, "2.25.0"),
    ("inf2.xlarge", "distilbert-base-uncased", 1, 3401.97, 0.5786, 0.6773, "2.26.0"),
    ("inf2.xlarge", "distilbert-base-uncased", 16, 5307.88, 6.0105, 6.2308, "2.27.0"),
    ("inf2.xlarge", "resnet50", 1, 1218.875, 0.83, 0.846, "2.21.0"),
    ("inf2.xlarge", "resnet50", 8, 4393.304, 7.283, 7.331, "2.21.0"),
    ("inf2.xlarge", "vit-base-patch16-224", 1, 746.139, 1.322, 1.378, "2.21.0"),
    ("inf2.xlarge", "vit-base-patch16-224", 2, 1955.406, 4.087, 4.125, "2.21.0"),
    ("trn1.2xlarge", "bert-base-uncased", 1, 2085.45, 0.9429, 1.0285, "2.26.0"),
    ("trn1.2xlarge", "bert-base-uncased", 16, 3421.57, 9.34482, 9.41992, "2.27.0"),
    ("trn1.2xlarge", "roberta-base", 1, 2094.37, 0.9580, 1.0059, "2.27.0"),
    ("trn1.2xlarge", "roberta-base", 16, 3378.11, 9.4604, 9.5332, "2.28.0"),
    ("trn1.2xlarge", "distilbert-base-uncased", 1, 3672.38, 0.5426, 0.5853, "2.27.0"),
    ("trn1.2xlarge", "distilbert-base-uncased", 16, 6369.44, 5.0099, 5.0921, "2.28.0"),
]


def shipped() -> list[dict[str, str]]:
    with TABLE.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def key(row: dict) -> tuple[str, str, int]:
    return row["instance_type"], row["model"], int(row["batch_size"])


def published_row(row: dict[str, str]) -> dict[str, str]:
    """The row of the data-file copy that a table row cites (same model, instance, batch)."""
    path = PUBLISHED / row["data_file"]
    assert path.is_file(), f"no copy of {row['data_file']} in {PUBLISHED}"
    with path.open(encoding="utf-8", newline="") as f:
        found = [r for r in csv.DictReader(f) if r["Model"] == row["published_model"]
                 and r["Inst. Type"].lower() == row["instance_type"] and int(r["Batch Size"]) == int(row["batch_size"])]
    assert len(found) == 1, (row["data_file"], key(row), len(found))
    return found[0]


def throughput_column(rec: dict[str, str]) -> str:
    return next(c for c in rec if c.startswith("Throughput (inference/"))


# -- the shipped table ---------------------------------------------------------------------


def test_shipped_table_is_a_plain_csv_pandas_reads():
    text = TABLE.read_text(encoding="utf-8")
    assert not [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    df = pd.read_csv(TABLE)
    assert len(df) == 16
    assert tuple(df.columns) == TABLE_COLUMNS
    assert df[list(FIGURES)].notna().all().all()
    assert df["source_url"].str.startswith("https://awsdocs-neuron.readthedocs-hosted.com/").all()
    assert df["data_file"].str.startswith("about-neuron/benchmarks/").all()
    assert df["note"].str.contains("historical").all() and df["note"].str.contains("archive/src/benchmark").all()
    assert not df.duplicated(["instance_type", "model", "batch_size"]).any()
    assert set(df["instance_type"]) == {"inf2.xlarge", "trn1.2xlarge"}
    assert SIDECAR.is_file() and "not measured by trnbench" in " ".join(SIDECAR.read_text().split())


def test_model_names_are_card_names():
    cards = registry()
    for row in shipped():
        assert row["model"] in cards, row["model"]


def test_every_row_equals_its_data_file():
    rows = shipped()
    assert sorted(key(r) for r in rows) == sorted((i, m, b) for i, m, b, *_ in ISSUE_FIGURES)
    for row in rows:
        pub = published_row(row)
        assert float(row["throughput_avg"]) == float(pub[throughput_column(pub)]), key(row)
        assert float(row["latency_ms_p50"]) == float(pub["Latency P50 (ms)"]), key(row)
        assert float(row["latency_ms_p99"]) == float(pub["Latency P99 (ms)"]), key(row)
        # full precision: the file's own text
        assert (row["throughput_avg"], row["latency_ms_p50"], row["latency_ms_p99"]) == (
            pub[throughput_column(pub)], pub["Latency P50 (ms)"], pub["Latency P99 (ms)"])
        assert row["sdk_version"] == sdk_version_text(pub["Neuron Version"])
        assert row["framework"] == pub["Framework"] and row["published_task"] == pub["Task"]
        assert row["application_type"] == pub["Application Type"]
        assert pub["Compilation Autocast Data Type"] == "Matmult-BF16" and row["precision"] == "matmult-bf16"
        assert "--auto-cast=matmult" in row["compiler_args"]
        if "Sequence Length" in pub:
            assert int(row["seq_len"]) == int(pub["Sequence Length"])
        else:
            assert pub["Image Size"] == f"{row['image_size']}x{row['image_size']}"
        # Real Time rows come from the latency files, Batch rows from the throughput files
        kind = "latency" if pub["Application Type"] == "Real Time" else "throughput"
        assert Path(row["data_file"]).name.startswith(f"{kind}_data_"), key(row)


@pytest.mark.parametrize("instance, model, batch, tput, p50, p99, sdk", ISSUE_FIGURES)
def test_the_issue_figures_agree_with_the_table(instance, model, batch, tput, p50, p99, sdk):
    (row,) = [r for r in shipped() if key(r) == (instance, model, batch)]
    for value, given in ((row["throughput_avg"], tput), (row["latency_ms_p50"], p50), (row["latency_ms_p99"], p99)):
        digits = len(repr(given).split(".")[1])  # the issue's rounding
        assert round(float(value), digits) == pytest.approx(given, abs=1e-12), (model, batch, value, given)
    assert row["sdk_version"] == sdk


def test_in_flight_matches_littles_law():
    for row in shipped():
        in_flight = float(row["throughput_avg"]) * float(row["latency_ms_p50"]) / 1000 / int(row["batch_size"])
        assert int(row["n_models"]) * int(row["workers_per_model"]) == pytest.approx(in_flight, rel=0.02), key(row)


def test_shipped_table_loads_for_compare():
    refs = load_reference(TABLE)
    assert len(refs) == 16
    vit = next(r for r in refs if r["model"] == "vit-base-patch16-224" and r["batch_size"] == 1)
    assert vit["instance"] == "inf2.xlarge" and vit["image_size"] == 224 and vit["seq_len"] is None
    assert vit["throughput"] == 746.139 and vit["p50"] == 1.322 and vit["p99"] == 1.378


# -- import_published -------------------------------------------------------------------------


def test_import_published_rebuilds_the_shipped_table(tmp_path):
    rows = [r for path in COPIES for r in import_published(path)]
    table = {key(r): r for r in shipped()}
    assert sorted(key(r) for r in rows) == sorted(table)
    for r in rows:
        assert list(r) == list(TABLE_COLUMNS)
        want = table[key(r)]
        got = {k: "" if v is None else str(v) for k, v in r.items()}
        assert got == want, key(r)
    out = write_reference(sorted(rows, key=lambda r: list(table).index(key(r))), tmp_path / "t.csv")
    assert out.read_text(encoding="utf-8") == TABLE.read_text(encoding="utf-8")
    assert len(pd.read_csv(out)) == 16


def test_import_published_skips_what_it_cannot_map():
    result = import_published(PUBLISHED / "about-neuron/benchmarks/inf2/latency_data_encoder.csv")
    assert [r["model"] for r in result] == ["bert-base-uncased", "distilbert-base-uncased", "roberta-base"]
    assert result.skipped == [{"line": 2, "model": "albert-base-v2", "reason": "no model card for 'albert-base-v2'"}]
    dit = import_published(PUBLISHED / "about-neuron/benchmarks/inf2/latency_data_vision_dit.csv")
    assert list(dit) == [] and [s["model"] for s in dit.skipped] == ["PixArt Alpha"]


def test_import_published_maps_names_to_cards(tmp_path):
    names = card_names()
    assert names["google/vit-base-patch16-224"] == "vit-base-patch16-224"
    assert names["resnet50"] == "resnet50" and names["distilbert-base-uncased"] == "distilbert-base-uncased"
    assert "tiny-bert" not in names.values()
    f = tmp_path / "odd.csv"
    f.write_text("Model,Image Size,Inst. Type,Throughput (inference/sec),Latency P50 (ms),Latency P99 (ms),"
                 "Neuron Version,Batch Size,Compilation Autocast Data Type\n"
                 "google/vit-base-patch16-224,16x224x224,Inf2.xlarge,10,100,110,2.21,1,Matmult-BF16\n"
                 "resnet50,224x224,Inf2.xlarge,n/a,1,1,2.21,1,Matmult-BF16\n"
                 "resnet50,224x224,Inf2.xlarge,1000,1,1.1,2.21,1,None\n"
                 "resnet50,224x224,Inf2.xlarge,1000,1,1.1,2.21,4,All-FP8\n")
    result = import_published(f, data_file="x/y.csv", source_url="https://example.com/p")
    assert [s["reason"] for s in result.skipped] == [
        "image size '16x224x224': trnbench's image sizes are square",
        "throughput 'n/a' is not a positive number",
        "auto-cast 'All-FP8' has no neuronx-cc flag here (known: Matmult-BF16, None)"]
    (row,) = result
    assert row["precision"] == "fp32" and row["compiler_args"] == "--auto-cast=none"
    assert row["sdk_version"] == "2.21.0" and row["image_size"] == 224 and row["instance_type"] == "inf2.xlarge"
    assert row["n_models"] == 1 and row["workers_per_model"] == 1
    assert row["data_file"] == "x/y.csv" and row["source_url"] == "https://example.com/p"


@pytest.mark.parametrize("content, message", [
    (b"Inst. Type,Throughput (inference/sec),Batch Size\ninf2.xlarge,1,1\n", "needs a 'model' column"),
    (b"Model,Latency P50 (ms),Batch Size\nbert-base-uncased,1,1\n", "needs a 'Throughput (inference/second)' column"),
    (b"Model,Throughput (inference/sec)\nbert-base-uncased,1\n", "needs a 'Batch Size' column"),
    (b'{"Model": "bert-base-uncased"}\n', "not a CSV file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "cannot read Neuron published data file"),
    (b"Model,Batch Size\x00,x\n", "not a CSV file (binary content)"),
    (b"", "empty Neuron published data file"),
])
def test_bad_input_is_one_usage_error_line(tmp_path, content, message):
    f = tmp_path / "bad.csv"
    f.write_bytes(content)
    with pytest.raises(UsageError) as err:
        import_published(f)
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UsageError):
        import_published(tmp_path / "missing.csv")


def test_write_reference_writes_empty_cells_for_none(tmp_path):
    out = write_reference([{"model": "m", "batch_size": 1, "seq_len": None, "throughput_avg": "1.5", "_line": 3,
                            "extra": "x"}], tmp_path / "r.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join([*TABLE_COLUMNS, "extra"])
    assert not any(ln.startswith("#") for ln in lines)
    df = pd.read_csv(out)
    assert df.loc[0, "model"] == "m" and math.isnan(df.loc[0, "seq_len"]) and df.loc[0, "extra"] == "x"


# -- the published files' spellings, read by load_reference / compare_reference ------------------


def test_column_spellings_of_the_data_files():
    assert column_name("Inst. Type") == "inst_type"
    assert column_name("Throughput (inference/second)") == "throughput_inference_second"
    assert column_name("Latency P99 (ms)") == "latency_p99_ms"
    assert sdk_version_text("2.21") == "2.21.0" and sdk_version_text(" 2.21.0 ") == "2.21.0"
    assert sdk_version_text("2.18.1") == "2.18.1"


@pytest.mark.parametrize("name", ["inf2/latency_data_encoder.csv", "inf2/throughput_data_vision_cnn.csv",
                                  "trn1/throughput_data_encoder.csv", "inf2/latency_data_vision_dit.csv"])
def test_load_reference_reads_a_data_file_as_it_is(name):
    path = PUBLISHED / "about-neuron/benchmarks" / name
    refs = load_reference(path)
    with path.open(encoding="utf-8", newline="") as f:
        raw = list(csv.DictReader(f))
    assert len(refs) == len(raw)
    for ref, rec in zip(refs, raw):
        assert ref["model"] == rec["Model"]
        assert ref["instance"] == rec["Inst. Type"].lower()  # 'Inf2.xlarge' -> 'inf2.xlarge'
        assert ref["batch_size"] == int(rec["Batch Size"])
        assert ref["throughput"] == float(rec[throughput_column(rec)])
        assert ref["p50"] == float(rec["Latency P50 (ms)"]) and ref["p99"] == float(rec["Latency P99 (ms)"])
        assert ref["sdk_version"] == sdk_version_text(rec["Neuron Version"])
        assert ref["precision"] == rec["Compilation Autocast Data Type"]
        if "Sequence Length" in rec:
            assert ref["seq_len"] == int(rec["Sequence Length"])
        if "Image Size" in rec:
            side = int(rec["Image Size"].split("x")[0])
            assert ref["image_size"] == side  # '224x224' -> 224
    if name.endswith("dit.csv"):
        assert refs[0]["sdk_version"] == "2.20.0" and refs[0]["image_size"] == 256


def test_spelling_variants_in_one_table(tmp_path):
    f = tmp_path / "vendor.csv"
    f.write_text("Model,Image Size,Inst. Type,Throughput (inference/second),Latency P50 (ms),Latency P99 (ms),"
                 "Neuron Version,Batch Size,Sequence Length\n"
                 "resnet50,224x224,Inf2.xlarge,\"1,218.875\",0.83,0.846,2.21,1,\n"
                 "google/vit-base-patch16-224,16x224x224,INF2.XLARGE,1,1,1,2.21.0,1,\n"
                 "bert-base-uncased,,Trn1.2xlarge,2085.45,0.94,1.03,2.26,1,128\n")
    resnet, vit, bert = load_reference(f)
    assert resnet["instance"] == "inf2.xlarge" and resnet["image_size"] == 224
    assert resnet["throughput"] == 1218.875 and resnet["sdk_version"] == "2.21.0" == vit["sdk_version"]
    assert vit["instance"] == "inf2.xlarge" and vit["image_size"] == "16x224x224"
    assert bert["instance"] == "trn1.2xlarge" and bert["seq_len"] == 128 and bert["image_size"] is None


def test_compare_against_a_data_file_as_it_is(tmp_path):
    """A run on an inf2.xlarge against the published file itself: 'Inf2.xlarge', 'Matmult-BF16'
    and '224x224' all match the run's spellings."""
    base = {"target": "neuron", "compiler": "trace", "compiler_args": "--auto-cast=matmult", "scenario": "throughput",
            "n_models": 2, "workers_per_model": 2}
    run = make_run(tmp_path, "inf2", [
        dict(base, model="resnet50", batch_size=8, seq_len=None, image_size=224),
        dict(base, model="resnet50", batch_size=8, seq_len=None, image_size=192),
    ], env={"instance_type": "inf2.xlarge"}, n=400)
    rows, missing = compare_reference(run, PUBLISHED / "about-neuron/benchmarks/inf2/throughput_data_vision_cnn.csv")
    assert not missing
    by = {r.key["image_size"]: r for r in rows}
    assert by[224].comparable, by[224].mismatches
    assert by[224].as_dict()["throughput_published"] == 4393.304 and by[224].ref["sdk_version"] == "2.21.0"
    assert by[192].mismatches == ["image 192 vs published 224"]
    trn1 = make_run(tmp_path, "trn1", [dict(base, model="resnet50", batch_size=8, seq_len=None, image_size=224)],
                    env={"instance_type": "trn1.2xlarge"}, n=400)
    ((row,), _) = compare_reference(trn1, PUBLISHED / "about-neuron/benchmarks/inf2/throughput_data_vision_cnn.csv")
    assert row.mismatches == ["instance trn1.2xlarge vs published inf2.xlarge"]


def test_the_published_trn1_training_figures_become_train_cells(tmp_path):
    """issue 26: training_data_*.csv (verbatim) -> results/reference/neuron-published-train.csv."""
    results = {p.name: import_published(p) for p in TRAIN_COPIES}
    rows = [r for name in ("training_data_encoder.csv", "training_data_vision_transformers.csv")
            for r in results[name]]
    assert write_reference(rows, tmp_path / "t.csv").read_text() == TRAIN_TABLE.read_text()
    bert, vit = rows
    # BERT-Large Ph1 on one trn1.32xlarge: micro-batch 16, global 16384 over 32 NeuronCores
    assert (bert["model"], bert["scenario"], bert["batch_size"], bert["seq_len"]) == ("bert-large-uncased", "train", 16, 128)
    assert (bert["dp"], bert["grad_accum"], bert["optimizer"], bert["precision"]) == (32, 32, "adamw", "amp-bf16")
    assert bert["throughput_avg"] == "3826.6103" and bert["sdk_version"] == "2.28.0" and bert["compiler"] == "xla"
    assert (vit["model"], vit["batch_size"], vit["dp"], vit["grad_accum"], vit["precision"]) == (
        "vit-base-patch16-224", 64, 32, 1, "bf16")
    skipped = {s["reason"].split(":")[0] for r in results.values() for s in r.skipped}
    assert skipped == {"16 nodes", "no model card for 'Llama-3.1-8B pre-training'",
                       "no model card for 'Llama-3.1-70B pre-training'"}
