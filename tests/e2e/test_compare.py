"""`trnbench compare`: ratios with CIs, verdicts, the CI gate, references and pivots."""

from __future__ import annotations

import json
import math
import shutil
import time

import numpy as np
import pytest

from bench import Measure, Plan, UserModel, run_plan
from bench.analysis.compare import compare_runs, parse_threshold
from bench.analysis.estimate import parse_metrics
from bench.analysis.pivot import pivot
from bench.analysis.reference import compare_reference, load_reference
from bench.cli import main
from bench.errors import UsageError
from bench.stats.quantile import quantile_draws as _quantile_draws
from bench.stats.significance import holm
from tests.support.compare import make_run, scaled_copy
from tests.support.paths import DATA, ROOT

REFERENCE_CSV = str(DATA / "reference-sample.csv")

SUITE = [  # a small synthetic suite: latency and throughput cells, two batch sizes
    {"scenario": "latency", "batch_size": 1},
    {"scenario": "latency", "batch_size": 4, "_median_ms": 2.0},
    {"scenario": "throughput", "batch_size": 1, "workers_per_model": 2},
    {"scenario": "throughput", "batch_size": 4, "workers_per_model": 2, "_median_ms": 2.0},
    {"scenario": "latency", "batch_size": 1, "compiler": "jit", "_median_ms": 0.5},
    {"scenario": "throughput", "batch_size": 1, "compiler": "jit", "workers_per_model": 2, "_median_ms": 0.5},
]


def verdicts(comparison) -> list[str]:
    return [r.verdict for r in comparison.rows]


# -- statistics building blocks ----------------------------------------------------------


def test_parse_threshold_and_metrics():
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold("0.05") == pytest.approx(0.05)
    assert parse_threshold(" 12.5% ") == pytest.approx(0.125)
    for bad in ("abc%", "abc", "-1%", "nan", "5000%"):
        with pytest.raises(UsageError, match="threshold"):
            parse_threshold(bad)
    assert [m.name for m in parse_metrics(None)] == ["p50", "p99", "throughput"]
    assert [m.name for m in parse_metrics("P99, tput")] == ["p99", "throughput"]
    with pytest.raises(UsageError, match="unknown metric 'p77'"):
        parse_metrics("p50,p77")


def test_holm_adjustment():
    adj = holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    np.testing.assert_allclose(adj[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adj[4])
    assert list(holm([0.5, 0.9])) == [1.0, 1.0]


def test_exact_order_statistic_bootstrap_matches_brute_force():
    rng = np.random.default_rng(1)
    x = np.sort(rng.lognormal(0, 0.3, 501))
    for q in (0.5, 0.9):
        fast = _quantile_draws(x, q, np.random.default_rng(2), 20000)
        k = int(np.ceil(x.size * q))
        brute = np.sort(x[rng.integers(0, x.size, (4000, x.size))], axis=1)[:, k - 1]
        assert fast.mean() == pytest.approx(brute.mean(), rel=2e-3)
        assert fast.std() == pytest.approx(brute.std(), rel=0.08)


# -- run vs run on synthetic runs (known ratios) -----------------------------------------


def test_slowed_copy_is_slower_with_the_right_ratio(tmp_path):
    a = make_run(tmp_path, "a", SUITE, seed=1)
    b = make_run(tmp_path, "b", SUITE, seed=1, scale=1.2)  # every latency x 1.2
    c = compare_runs(a, b)
    assert len(c.rows) == 3 * 2 + 3 * 3  # latency cells: p50, p99; throughput cells: + throughput
    for r in c.rows:
        expected = 1 / 1.2 if r.metric == "throughput" else 1.2
        assert r.ratio == pytest.approx(expected, rel=0.01), r
        assert r.ci_low < expected < r.ci_high, r
        assert r.verdict == "slower", r
    assert c.geomean["p50"][0] == pytest.approx(1.2, rel=0.01)
    assert c.geomean["p50"][1] < 1.2 < c.geomean["p50"][2]
    assert c.geomean["throughput"][0] == pytest.approx(1 / 1.2, rel=0.01)
    assert c.regressions == len(c.rows)
    # and the other way round: faster
    back = compare_runs(b, a)
    assert set(verdicts(back)) == {"faster"} and back.regressions == 0


def test_aa_synthetic_runs_are_all_unchanged(tmp_path):
    a = make_run(tmp_path, "a", SUITE, seed=1)
    b = make_run(tmp_path, "b", SUITE, seed=2)  # same distribution, other draws
    c = compare_runs(a, b)
    assert set(verdicts(c)) == {"~"}
    covered = [r.ci_low <= 1.0 <= r.ci_high for r in c.rows if np.isfinite(r.ci_low)]
    assert sum(covered) >= 0.8 * len(covered)  # 95 % intervals: nearly all contain 1
    assert c.regressions == 0
    g = c.geomean["p50"]
    assert g[1] < 1.0 < g[2]


def test_small_systematic_shift_is_significant_but_under_the_threshold(tmp_path):
    """Two runs 3 % apart with many samples: 'different' by Mann-Whitney, yet `~` at 5 %."""
    cells = [{"scenario": "latency", "_n": 20000}]
    a = make_run(tmp_path, "a", cells, seed=1)
    b = make_run(tmp_path, "b", cells, seed=2, scale=1.03)
    c = compare_runs(a, b, metrics="p50")
    (row,) = c.rows
    assert row.p_adj < 1e-6
    assert 1.0 < row.ci_low < row.ci_high < 1.05
    assert row.verdict == "~"
    assert compare_runs(a, b, metrics="p50", threshold="1%").rows[0].verdict == "slower"


def test_holm_controls_false_alarms_over_many_rows(tmp_path):
    """Forty A/A cells at threshold 0: the Holm-adjusted gate raises no alarm."""
    cells = [{"scenario": "latency", "batch_size": b, "_n": 400} for b in range(1, 41)]
    a = make_run(tmp_path, "a", cells, seed=3)
    b = make_run(tmp_path, "b", cells, seed=4)
    c = compare_runs(a, b, metrics="p50", threshold=0)
    assert c.regressions == 0 and set(verdicts(c)) == {"~"}
    assert min(r.p for r in c.rows) < 0.2  # raw p-values do vary; the adjusted ones stay high


def test_too_few_samples_for_p99_gives_no_ci(tmp_path):
    a = make_run(tmp_path, "a", [{"scenario": "latency", "_n": 100}], seed=1)
    b = make_run(tmp_path, "b", [{"scenario": "latency", "_n": 100}], seed=1, scale=2.0)
    c = compare_runs(a, b, metrics="p50,p99")
    p50, p99 = c.rows
    assert p50.verdict == "slower"
    assert p99.verdict == "~" and np.isnan(p99.ci_low)
    assert "too few samples for a p99 CI (A 100, B 100)" in p99.notes


def test_only_in_one_run_and_broken_cells_are_listed_apart(tmp_path, capsys):
    a = make_run(tmp_path, "a", [{"batch_size": 1}, {"batch_size": 2}, {"batch_size": 8}], seed=1)
    b = make_run(tmp_path, "b", [{"batch_size": 1}, {"batch_size": 2, "_status": "failed"},
                                 {"batch_size": 16}], seed=2)
    c = compare_runs(a, b)
    assert [r.key["batch_size"] for r in c.rows] == [1, 1]
    assert [k["batch_size"] for k in c.only_a] == [8] and [k["batch_size"] for k in c.only_b] == [16]
    assert len(c.broken) == 1 and "B failed: deliberate failed" in c.broken[0][1]
    assert c.regressions == 1
    assert main(["compare", str(a), str(b)]) == 0
    assert main(["compare", str(a), str(b), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "only in A (1)" in out and "b8" in out and "only in B (1)" in out and "b16" in out
    assert "broken in B (1" in out


def test_environment_differences_are_named(tmp_path, capsys):
    a = make_run(tmp_path, "a", [{"scenario": "latency"}], seed=1)
    b = make_run(tmp_path, "b", [{"scenario": "latency"}], seed=2,
                 env={"torch": "2.14.0", "instance_type": "inf2.xlarge"})
    c = compare_runs(a, b)
    assert "torch 2.13.0 → 2.14.0" in c.rows[0].env_diff
    assert "instance_type - → inf2.xlarge" in c.rows[0].env_diff
    assert main(["compare", str(a), str(b)]) == 0
    assert "env differs: instance_type - → inf2.xlarge; torch 2.13.0 → 2.14.0" in capsys.readouterr().out


def test_ignore_key_joins_cells_that_differ_in_compiler_args(tmp_path, capsys):
    a = make_run(tmp_path, "a", [{"compiler_args": ""}], seed=1)
    b = make_run(tmp_path, "b", [{"compiler_args": "--optlevel 3"}], seed=1, scale=0.7)
    with pytest.raises(UsageError, match="no cells in common.*--ignore-key compiler_args"):
        compare_runs(a, b)
    c = compare_runs(a, b, ignore=["compiler_args"])
    assert c.rows[0].verdict == "faster"
    assert "compiler_args - → --optlevel 3" in c.rows[0].env_diff
    with pytest.raises(UsageError, match="not a key column"):
        compare_runs(a, b, ignore=["hostname"])


def test_missing_raw_samples_compare_recorded_figures_without_ci(tmp_path):
    a = make_run(tmp_path, "a", [{}], seed=1)
    b = make_run(tmp_path, "b", [{}], seed=1, scale=1.5)
    shutil.rmtree(b / "samples")
    (row, _) = compare_runs(a, b).rows
    assert row.ratio == pytest.approx(1.5, rel=0.01)
    assert row.verdict == "~" and "no raw samples: no CI" in row.notes


def test_sets_of_runs_are_pooled(tmp_path):
    a = make_run(tmp_path / "A", "a1", SUITE[:1], seed=1, n=1000)
    make_run(tmp_path / "A", "a2", SUITE[:1], seed=2, n=1000)
    make_run(tmp_path / "B", "b1", SUITE[:1], seed=3, n=1000, scale=1.2)
    c = compare_runs(tmp_path / "A", tmp_path / "B", metrics="p50")
    (row,) = c.rows
    assert row.n_a == 2000 and row.n_b == 1000
    assert row.ratio == pytest.approx(1.2, rel=0.02) and row.verdict == "slower"
    assert "a1" in c.a.describe() and "a2" in c.a.describe()
    assert compare_runs(a, tmp_path / "B").rows  # one run against a folder of runs


def test_compare_is_reproducible_and_fast(tmp_path):
    a = make_run(tmp_path, "a", SUITE * 1, seed=1, n=20000)
    b = make_run(tmp_path, "b", SUITE * 1, seed=2, n=20000)
    t = time.perf_counter()
    first = compare_runs(a, b)
    # a bound against a hang or a quadratic blow-up, not a speed target (this VM's speed moves
    # 1.8x between minutes; the compare runs in ~0.5 s here)
    assert time.perf_counter() - t < 30.0
    second = compare_runs(a, b)
    assert [(r.ci_low, r.ci_high) for r in first.rows] == [(r.ci_low, r.ci_high) for r in second.rows]


def test_generate_metrics_ttft_and_tpot(tmp_path):
    from bench.results.store import RunStore
    from tests.support.compare import BASE_ENV, BASE_KEY, cell_id

    key = dict(BASE_KEY, model="syn-llama", scenario="generate", output_len=16)
    runs = []
    for name, scale in (("a", 1.0), ("b", 1.3)):
        store = RunStore.create(tmp_path, {"name": name}, BASE_ENV, run_id=name)
        rng = np.random.default_rng(0)
        ttft = (rng.lognormal(np.log(20e6), 0.05, 800) * scale).astype(np.int64)
        tpot = rng.lognormal(np.log(5e6), 0.05, 800)  # unchanged
        e2e = (ttft + 15 * tpot).astype(np.int64)
        start = 10**12 + np.concatenate([[0], np.cumsum(e2e)[:-1]])
        store.append(dict(key, cell_id=cell_id(key), status="ok", ttft_ms_p50=float(np.median(ttft)) / 1e6),
                     {"latency_ns": e2e, "start_ns": start, "ttft_ns": ttft, "tpot_ns": tpot})
        runs.append(store.path)
    c = compare_runs(*runs, metrics="ttft,tpot,p50")
    by = {r.metric: r for r in c.rows}
    assert by["ttft"].ratio == pytest.approx(1.3, rel=1e-3) and by["ttft"].verdict == "slower"
    assert by["tpot"].ratio == pytest.approx(1.0) and by["tpot"].verdict == "~"
    assert by["p50"].ratio > 1.0  # e2e latency
    # ttft applies to generate cells only
    plain = make_run(tmp_path, "plain", [{}])
    assert [r.metric for r in compare_runs(plain, plain, metrics="ttft,p50").rows] == ["p50"]


# -- the command line and its exit codes ----------------------------------------------------


def test_cli_gate_exit_codes_and_formats(tmp_path, capsys):
    a = make_run(tmp_path, "a", SUITE, seed=1)
    same = make_run(tmp_path, "same", SUITE, seed=2)
    slow = make_run(tmp_path, "slow", SUITE, seed=1, scale=1.2)
    assert main(["compare", str(a), str(same), "--fail-on-regression"]) == 0
    assert main(["compare", str(a), str(slow)]) == 0  # no gate: report only
    assert main(["compare", str(a), str(slow), "--fail-on-regression"]) == 1
    assert main(["compare", str(a), str(slow), "--fail-on-regression", "--threshold", "25%"]) == 0
    assert main(["compare", str(slow), str(a), "--fail-on-regression"]) == 0  # faster is no regression
    capsys.readouterr()
    assert main(["compare", str(a), str(slow), "--format", "json", "--metric", "p50"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["verdict"] for r in data["rows"]} == {"slower"} and data["regressions"] == 6
    assert data["rows"][0]["ratio"] == pytest.approx(1.2, rel=0.01)
    assert main(["compare", str(a), str(slow), "--format", "csv", "--metric", "throughput"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model,") and len(lines) == 1 + 3
    assert main(["compare", str(a), str(slow), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "| cell | metric | A | B | B/A | 95% CI |" in md and "slower" in md


@pytest.mark.parametrize("args, message", [
    (["--threshold", "abc%"], "threshold must be"),
    (["--metric", "p77"], "unknown metric"),
    (["--ignore-key", "nonsense"], "not a key column"),
    (["--by", "nonsense"], "unknown --by"),
    (["--reference", "no-such-table"], "unknown reference 'no-such-table'"),
])
def test_cli_bad_input_is_one_line_and_status_2(tmp_path, capsys, args, message):
    a = make_run(tmp_path, "a", [{}], seed=1)
    b = make_run(tmp_path, "b", [{}], seed=2)
    assert main(["compare", str(a), str(b), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_unreadable_inputs(tmp_path, capsys):
    a = make_run(tmp_path, "a", [{"model": "m1"}], seed=1)
    b = make_run(tmp_path, "b", [{"model": "m2"}], seed=1)
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert "no such results directory" in capsys.readouterr().err
    assert main(["compare", str(a), str(b)]) == 2
    assert "no cells in common" in capsys.readouterr().err
    assert main(["compare", str(a)]) == 2
    assert "compare needs two runs" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "run.json").write_text("{not json")
    assert main(["compare", str(a), str(tmp_path / "junk")]) == 2
    assert "cannot read" in capsys.readouterr().err


# -- against published figures -------------------------------------------------------------


NEURON_ENV = {"instance_type": "inf2.xlarge", "torch_neuronx": "2.1.2.2.3.0", "neuronx_cc": "2.14.213"}
MATMULT = "--auto-cast=matmult --auto-cast-type=bf16"


def test_reference_loader_is_tolerant():
    refs = load_reference(REFERENCE_CSV)
    first = refs[0]
    assert first["model"] == "bert-base-uncased" and first["instance"] == "inf2.xlarge"
    assert first["batch_size"] == 1 and first["seq_len"] == 128
    assert first["throughput"] == pytest.approx(1234.5) and first["p50"] == pytest.approx(0.81)
    assert first["precision"] == "Matmult-BF16" and first["sdk_version"] == "2.20.0"
    assert first["source_url"].startswith("https://")


def test_reference_rejects_tables_without_model_or_figures(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name_of_thing,speed\nx,1\n")
    with pytest.raises(UsageError, match="needs a 'model' column"):
        load_reference(bad)
    bad.write_text("model,colour\nx,red\n")
    with pytest.raises(UsageError, match="throughput, p50 or p99"):
        load_reference(bad)


def test_compare_with_reference(tmp_path, capsys):
    base = {"model": "bert-base-uncased", "target": "neuron", "compiler": "trace", "seq_len": 128,
            "compiler_args": MATMULT}
    run = make_run(tmp_path, "inf2", [
        dict(base, scenario="throughput", batch_size=1, workers_per_model=2, _median_ms=1.6),  # comparable
        dict(base, scenario="throughput", batch_size=4, workers_per_model=2),  # published on another instance
        dict(base, scenario="latency", batch_size=1, compiler_args="", _median_ms=1.0),  # fp32: precision differs
        dict(base, model="resnet50", seq_len=None, image_size=224),  # no published figure
    ], env=NEURON_ENV, n=4000)
    rows, missing = compare_reference(run, REFERENCE_CSV)
    assert [k["model"] for k in missing] == ["resnet50"]
    by = {(r.key["scenario"], r.key["batch_size"], r.key["precision"]): r for r in rows}
    good = by[("throughput", 1, "matmult-bf16")]
    assert good.comparable
    d = good.as_dict()
    assert d["throughput_ratio"] == pytest.approx(good.run["throughput"] / 1234.5)
    assert d["p50_ratio"] == pytest.approx(good.run["p50"] / 0.81)
    other = by[("throughput", 4, "matmult-bf16")]
    assert not other.comparable and "instance inf2.xlarge vs published inf2.48xlarge" in other.mismatches
    fp32 = by[("latency", 1, "fp32")]
    assert not fp32.comparable and "precision fp32 vs published matmult-bf16" in fp32.mismatches
    assert main(["compare", str(run), "--reference", REFERENCE_CSV]) == 0
    out = capsys.readouterr().out
    assert "not comparable: instance inf2.xlarge vs published inf2.48xlarge" in out
    assert "% of published" in out and "https://example.com/neuron/bert" in out
    assert main(["compare", str(run), "--reference", REFERENCE_CSV, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sum(r["comparable"] for r in data["rows"]) == 1 and data["no_published_figure"]


def test_cpu_run_against_reference_is_not_comparable(tmp_path):
    run = make_run(tmp_path, "cpu", [{"model": "bert-base-uncased", "seq_len": 128,
                                      "scenario": "throughput", "workers_per_model": 2}])
    (row,), _ = compare_reference(run, REFERENCE_CSV)
    assert not row.comparable
    assert "target cpu vs published neuron" in row.mismatches
    assert any(m.startswith("instance not EC2 vs published") for m in row.mismatches)


@pytest.mark.skipif(not (ROOT / "results" / "reference" / "neuron-published.csv").exists(),
                    reason="results/reference/neuron-published.csv not present")
def test_the_shipped_neuron_published_table_loads_and_matches(tmp_path):
    refs = load_reference("neuron-published")
    assert refs and all(r["model"] and np.isfinite(r["throughput"]) for r in refs)
    bert = next(r for r in refs if r["model"] == "bert-base-uncased" and r["instance"] == "inf2.xlarge"
                and r["batch_size"] == 1)
    run = make_run(tmp_path, "inf2", [{"model": "bert-base-uncased", "target": "neuron", "compiler": "trace",
                                       "seq_len": bert["seq_len"], "compiler_args": "--auto-cast=matmult",
                                       "scenario": "throughput", "workers_per_model": 2},
                                      {"model": "bert-base-uncased", "target": "neuron", "compiler": "trace",
                                       "seq_len": bert["seq_len"], "compiler_args": "--auto-cast=matmult",
                                       "scenario": "latency"}],
                   env={"instance_type": "inf2.xlarge"})
    rows, _ = compare_reference(run, "neuron-published")
    by = {r.key["scenario"]: r for r in rows}
    assert by["throughput"].comparable, by["throughput"].mismatches
    assert by["throughput"].ref["batch_size"] == 1
    assert not by["latency"].comparable and "scenario latency vs published throughput" in by["latency"].mismatches


# -- pivots ----------------------------------------------------------------------------------


def test_pivot_by_target_puts_targets_side_by_side(tmp_path, capsys):
    cells = [{"scenario": "throughput", "batch_size": b, "workers_per_model": 2} for b in (1, 4)]
    cpu = make_run(tmp_path, "cpu", cells, seed=1)
    gpu = make_run(tmp_path, "gpu", [dict(c, target="cuda", compiler="inductor") for c in cells],
                   seed=1, scale=0.25, env={"device_name": "NVIDIA H100"})
    (table,) = pivot([cpu, gpu], "target", "throughput")
    assert table.columns == ["cpu/eager", "cuda/inductor"]
    assert len(table.rows) == 2
    for _key, cells_ in table.rows:
        assert cells_["cuda/inductor"][0] / cells_["cpu/eager"][0] == pytest.approx(4.0, rel=0.02)
    assert main(["compare", str(cpu), str(gpu), "--by", "target", "--metric", "throughput,p50"]) == 0
    out = capsys.readouterr().out
    assert "cpu/eager" in out and "cuda/inductor" in out and "(×0.25)" in out  # p50: a quarter of cpu's
    assert "relative to cpu/eager" in out
    assert main(["compare", str(cpu), str(gpu), "--by", "instance", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["column"] for r in records} == {"Test CPU", "NVIDIA H100"}


def test_pivot_by_sdk_and_run_flags_unstable_cells(tmp_path, capsys):
    a = make_run(tmp_path, "old", [{}], seed=1, env={"torch": "2.12.0"})
    b = make_run(tmp_path, "new", [{"_status": "unstable"}], seed=2, env={"torch": "2.13.0"})
    (table,) = pivot([a, b], "sdk", "p50")
    assert table.columns == ["torch 2.12.0", "torch 2.13.0"]
    assert main(["compare", str(a), str(b), "--by", "sdk", "--metric", "p50"]) == 0
    out = capsys.readouterr().out
    assert "unstable" in out
    assert main(["compare", str(a), str(b), "--by", "run", "--format", "md"]) == 0
    assert "| model | batch | shape | old | new |" in capsys.readouterr().out


# -- real runs: A/A on the same machine, and a model made genuinely slower ------------------


MEASURE = Measure(rounds=1, warmup_s=0.1, min_duration_s=0.3, max_duration_s=0.6, min_samples=30, trim_s=0.1)


AB_MEASURE = Measure(rounds=6, warmup_s=0.05, min_duration_s=1.2, max_duration_s=2.4, min_samples=120, trim_s=0.05)


def _ab(tmp_path, name: str, model_a, model_b, **grid):
    """Both sides interleaved round by round in one run (bench.execute.ab): what a busy shared
    machine does to one side it does to the other, so the paired ratio keeps its coverage."""
    from bench.analysis.paired import compare_paired
    from bench.execute.ab import run_ab

    plans = [Plan.from_grid(models=[m], scenarios=["latency"], threads_per_worker=1, measure=AB_MEASURE, **grid)
             for m in (model_a, model_b)]
    root, a, b = run_ab(*plans, tmp_path / name, rounds=12, progress=False)
    return compare_paired(a, b, metrics="p50")[0], a, b


def test_aa_interleaved_sides_pass_the_gate(tmp_path):
    """The same cells on both sides, interleaved: the gate calls no row slower or faster at
    the default 5 % threshold. No retry and no skip on a busy machine: a busy round is
    measured again (bench.execute.rounds), and what stays busy lands on both sides alike."""
    c, a, b = _ab(tmp_path, "aa", "tiny-bert", "tiny-bert", compilers=["eager", "jit"], batch_sizes=[1, 4])
    assert len(c.rows) == 4 and not c.not_compared
    assert c.regressions == 0 and not c.faster and not c.slower, c.summary()
    for r in c.rows:
        # bounded, and not absurd: on this VM a round of tiny-bert moves +-30 % with no neighbour
        assert 0 < r.ci_low < r.ratio < r.ci_high < math.inf and r.ci_high / r.ci_low < 2.0, r
    assert main(["compare", str(a.parent), "--metric", "p50", "--fail-on-regression"]) == 0


def test_real_model_with_extra_work_is_slower(tmp_path, capsys):
    """8 passes of a block against 5 (60 % more work in forward), interleaved: slower, and the
    ratio lands near 1.6. Not 6 against 5: on this project's VM a 0.2 s round's median moves
    by up to 1.8x with nothing else running (seen: 0.12 and 0.19 ms rounds of one side), so
    12 short rounds do not resolve 20 % every time; what ab resolves at realistic round
    lengths is measured by benchmarks/gate.py regression (docs/validation.md)."""
    import tests.support.compare as h

    c, a, b = _ab(tmp_path, "ab", UserModel("mlp", h.mlp_5), UserModel("mlp", h.mlp_8))
    (p50,) = c.rows
    assert p50.verdict == "slower" and 1.25 < p50.ratio < 2.0, p50
    assert p50.ci_low > 1.0 and c.regressions == 1
    # the ab directory compares paired again; its two sides also compare as separate runs
    assert main(["compare", str(a.parent), "--metric", "p50", "--fail-on-regression"]) == 1
    assert "slower" in capsys.readouterr().out
    assert main(["compare", str(a), str(b), "--metric", "p50"]) == 0


def test_scaled_copy_of_a_real_run(tmp_path):
    """The `scaled_copy` helper used for the 20 %-slower figure gives exactly x1.2."""
    plan = Plan.from_grid(models=["tiny-bert"], scenarios=["latency", "throughput"], threads_per_worker=1,
                          measure=MEASURE)
    a = run_plan(plan, out=tmp_path / "a", progress=False)
    b = scaled_copy(a, tmp_path, 1.2)
    c = compare_runs(a, b)
    for r in c.rows:
        expected = 1 / 1.2 if r.metric == "throughput" else 1.2
        assert r.ratio == pytest.approx(expected, rel=0.02), r
        if not np.isnan(r.ci_low):  # (an interval that collapsed to the point: rounding's last digits)
            assert r.ci_low * (1 - 1e-6) < expected < r.ci_high * (1 + 1e-6)
    assert "slower" in verdicts(c) and "faster" not in verdicts(c)
