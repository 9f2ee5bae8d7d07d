"""Cost per million (the Neuron pages' formula), the Parquet export's fixed types, and
`reference import` from the command line."""

from __future__ import annotations

import csv

import pytest

from bench.cli import main
from bench.execute.cell import build_row
from bench.plan.cell import Cell
from bench.results import prices
from tests.support.compare import make_run
from tests.support.paths import DATA

PUBLISHED = DATA / "published" / "about-neuron" / "benchmarks" / "trn1" / "latency_data_encoder.csv"


def test_cost_per_1m_inf_is_the_published_formula():
    # the Neuron pages: (1.0e6 / throughput) * (RI-effective hourly rate / 3.6e3)
    assert prices.cost_per_1m(1998.20950133, 0.328) == pytest.approx((1.0e6 / 1998.20950133) * (0.328 / 3.6e3))
    assert prices.cost_per_1m(0, 0.328) is None and prices.cost_per_1m(100, None) is None
    table = prices.price_table()
    assert table["inf2.xlarge"]["price_per_hour"] == "0.328" and table["trn1.2xlarge"]["price_per_hour"] == "0.512"
    assert {r["kind"] for r in table.values()} == {"RI-effective"}


def test_rows_carry_cost_from_the_table_or_the_given_price():
    cell = Cell(model="tiny-bert", scenario="throughput")
    row = build_row(cell, "r", {"instance_type": "inf2.xlarge"}, fields={"throughput_avg": 2000.0})
    assert row["price_per_hour"] == 0.328 and row["price_kind"] == "RI-effective"
    assert row["cost_per_1m_inf"] == pytest.approx(1e6 / 2000.0 * 0.328 / 3600)
    given = build_row(cell, "r", {"instance_type": "inf2.xlarge", **prices.price_fields("inf2.xlarge", 1.0)},
                      fields={"throughput_avg": 2000.0, "output_tokens_per_s": 500.0})
    assert given["price_kind"] == "given" and given["cost_per_1m_inf"] == pytest.approx(1e6 / 2000 / 3600)
    assert given["cost_per_1m_tokens"] == pytest.approx(1e6 / 500 / 3600)
    unpriced = build_row(cell, "r", {"instance_type": ""}, fields={"throughput_avg": 2000.0})
    assert "cost_per_1m_inf" not in unpriced  # a host with no known price has no cost


def test_a_price_that_is_not_a_number_is_one_line_and_exit_2(tmp_path, capsys):
    for bad in ("abc", "-1", "0", "nan"):
        assert main(["run", "-m", "tiny-bert", "--price-per-hour", bad, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--price-per-hour must be a positive number" in err[0]
    assert not any(tmp_path.iterdir())


def test_parquet_export_has_fixed_types(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    run = make_run(tmp_path, "r1", [{"scenario": "latency", "batch_size": b} for b in (1, 4)], seed=1)
    out = tmp_path / "rows.parquet"
    assert main(["show", str(run), "--format", "parquet", "--output", str(out)]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 2 and list(df["batch_size"]) == [1, 4]
    assert str(df["batch_size"].dtype) == "Int64" and str(df["seq_len"].dtype) == "Int64"
    assert df["latency_ms_p50"].dtype == "float64" and str(df["model"].dtype).startswith("string")
    assert str(df["cache_hit"].dtype) == "boolean"
    assert df["cost_per_1m_inf"].dtype == "float64"  # a column no row has is still there, typed
    from bench.results.schema import COLUMNS

    assert list(df.columns[:len(COLUMNS)]) == COLUMNS
    assert main(["show", str(run), "--format", "parquet"]) == 2
    assert "give --output FILE.parquet" in capsys.readouterr().err


def test_reference_import_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "trn1-latency.csv"
    assert main(["reference", "import", str(PUBLISHED), "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["model"] for r in rows} >= {"bert-base-uncased"} and all(r["instance_type"] == "trn1.2xlarge" for r in rows)
    assert main(["reference", "import", str(PUBLISHED), "-o", str(out)]) == 2  # no silent overwrite
    assert "--force" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("speed,size\n1,2\n")
    assert main(["reference", "import", str(bad), "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model" in err[0] and not (tmp_path / "x.csv").exists()
