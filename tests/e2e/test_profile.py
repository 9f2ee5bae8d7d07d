"""`--profile`: one untimed pass per cell under its target's profiler, its files in the run
directory, its top operators in the row, the report and compare (bench.targets.profiling).

CPU: torch.profiler for real (a Chrome trace, the operator table). Neuron: the runtime's
capture in a worker of its own (NEURON_RT_INSPECT_*, never torch.profiler), against the
stand-ins (tests/stand_ins/README.md): the SDK writes the documented capture layout when the
variables are set, `neuron-explorer` answers `view -d DIR --output-format summary-json`.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import Plan, load, run_plan
from bench.cli import main as cli_main
from bench.results.store import read_rows
from bench.targets import profiling
from tests.e2e.test_kill_resume import _cli, _killed, _run_dir, assert_every_cell_once

RUN = ["--seq-len", "16", "--duration", "0.3", "--warmup", "0.05", "--min-samples", "10", "--rounds", "2",
       "--max-rounds", "2", "--threads", "1", "--no-progress", "--format", "json"]


def _rows(run_dir: Path) -> list[dict]:
    return read_rows(run_dir)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two profiled runs of tiny-bert: an inference cell and a training step each."""
    out = tmp_path_factory.mktemp("profiled")
    for _ in range(2):
        done = _cli(["run", "-m", "tiny-bert", "-s", "latency,train", "-b", "2", "--profile", *RUN, "--out", str(out)])
        assert done.returncode == 0, done.stderr[-3000:]
    return sorted(p for p in out.iterdir() if (p / "run.json").is_file())


def test_a_profiled_cell_has_its_trace_its_operators_and_the_same_row_otherwise(two_runs):
    rows = _rows(two_runs[0])
    assert {r["scenario"] for r in rows} == {"latency", "train"}
    for r in rows:
        assert r["status"] in ("ok", "unstable"), r.get("error")
        folder = two_runs[0] / r["profile_dir"]
        assert r["profile_dir"] == f"profiles/{r['cell_id']}" and r["profile_tool"] == "torch.profiler"
        with gzip.open(folder / "trace.json.gz", "rt") as f:
            trace = json.load(f)  # a Chrome/Perfetto trace
        names = {e.get("name") for e in trace["traceEvents"]}
        assert profiling.REQUEST_EVENT in names and any(str(n).startswith("aten::") for n in names)
        ops = json.loads(r["profile_top_ops"])
        assert len(ops) == profiling.TOP_OPS
        shares = [o["share"] for o in ops]
        assert shares == sorted(shares, reverse=True) and 0 < shares[0] <= 1
        assert 0 < r["profile_ops_share"] <= 1.0 and r["profile_pass_s"] > 0
        assert (folder / "ops.csv").read_text().startswith("op,calls,self_cpu_us")
        # the pass is not a measurement: the samples and the figures are the rounds' alone
        assert r["samples"] > 0 and r["rounds"] == 2
    train = next(r for r in rows if r["scenario"] == "train")
    step = json.loads((two_runs[0] / train["profile_dir"] / "summary.json").read_text())
    assert step["steps"] == 1  # one profiled optimizer step
    assert any("Optimizer.step" in o["op"] or o["op"].startswith("aten::") for o in json.loads(train["profile_top_ops"]))


def test_the_report_links_each_profile_and_shows_its_operators(two_runs, tmp_path):
    out = tmp_path / "report.html"
    assert cli_main(["report", str(two_runs[0]), "--out", str(out)]) == 0
    html = out.read_text()
    assert '<h2 id="profiles">Profiles</h2>' in html and "aten::" in html
    row = next(r for r in _rows(two_runs[0]) if r["scenario"] == "latency")
    link = two_runs[0] / row["profile_dir"] / "trace.json.gz"
    rel = os.path.relpath(link, tmp_path)
    assert f'href="{rel}"' in html and (tmp_path / rel).is_file()
    md = tmp_path / "report.md"
    assert cli_main(["report", str(two_runs[0]), "--out", str(md)]) == 0
    assert "## Profiles" in md.read_text()


def test_compare_of_two_profiled_runs_lists_the_operators_that_moved_most(two_runs, capsys):
    assert cli_main(["compare", str(two_runs[0]), str(two_runs[1])]) == 0
    text = capsys.readouterr().out
    assert "operators whose share of the profiled pass moved most (2 cells profiled in both)" in text
    assert " pts)" in text
    assert cli_main(["compare", str(two_runs[0]), str(two_runs[1]), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["op_shifts"]) == 2 and doc["op_shifts"][0]["ops"][0]["op"]


@pytest.mark.slow
def test_a_kill_after_the_profiled_pass_then_resume_profiles_again_and_records_every_cell_once(tmp_path):
    args = ["run", "-m", "tiny-bert", "-s", "latency", "-b", "1,2", "--profile", *RUN, "--out", str(tmp_path)]
    _killed(_cli(args, kill="profile:1"))
    run_dir = _run_dir(tmp_path)
    assert not run_dir.joinpath("cells.jsonl").read_text().strip()  # killed before the first row
    done = _cli(["resume", str(run_dir), "--no-progress", "--format", "json"])
    assert done.returncode == 0, done.stderr[-2000:]
    rows = assert_every_cell_once(run_dir)
    assert all((run_dir / r["profile_dir"] / "trace.json.gz").is_file() for r in rows)


def test_profile_on_ray_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    code = cli_main(["run", "-m", "tiny-bert", "--profile", "--executor", "ray", "--out", str(tmp_path),
                     "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--profile" in err[0] and "local executor" in err[0]
    assert not list(tmp_path.iterdir())


def test_a_suite_can_ask_for_profiles(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('[measure]\nprofile = true\nrounds = 1\n[[sweep]]\nmodels = ["tiny-bert"]\n')
    plan = Plan.from_suite(str(suite))
    assert all(c.measure.profile for c in plan.cells)
    suite.write_text('[measure]\nprofile = "yes"\n[[sweep]]\nmodels = ["tiny-bert"]\n')
    with pytest.raises(Exception, match="profile must be true or false"):
        Plan.from_suite(str(suite))


def test_a_dp_training_cell_says_why_it_has_no_profile():
    from bench.targets.train import TRAIN

    ctx = SimpleNamespace(prepared=SimpleNamespace(fn=None), target=None)
    with pytest.raises(profiling.ProfileRefused, match="--dp 2"):
        TRAIN.profile_pass(ctx, SimpleNamespace(dp=2), None)
    # said by the orchestrator, before any worker starts for the pass
    from bench.execute.cell import profile_cell

    cell = Plan.from_grid(models=["tiny-bert"], scenarios=["train"], dps=[2]).cells[0]
    pool = SimpleNamespace(target=None, ensure=None, own_process=None)  # never touched
    assert "--dp 2" in profile_cell(pool, cell, Path("/nonexistent"), Path("/nonexistent"))["profile_note"]


def test_shares_and_their_shifts_rank_by_size():
    from bench.analysis.profiles import op_shifts

    a = {"profile_top_ops": json.dumps([{"op": "x", "share": 0.5}, {"op": "y", "share": 0.1}])}
    b = {"profile_top_ops": json.dumps([{"op": "x", "share": 0.2}, {"op": "z", "share": 0.15}])}
    moved = op_shifts(a, b)
    assert [(s.op, round(s.change, 3)) for s in moved] == [("x", -0.3), ("z", 0.15), ("y", -0.1)]
    assert op_shifts(a, {}) == []
    assert profiling.calls_for(0.001) == profiling.PASS_MAX_CALLS and profiling.calls_for(1.0) == profiling.PASS_MIN_CALLS


# -- Neuron: the runtime's capture, in a worker of its own ----------------------------------------


def _events(host) -> list[dict]:
    return [json.loads(line) for line in host.log.read_text().splitlines()]


def test_neuron_profiles_with_the_runtimes_capture_in_a_worker_of_its_own(host, tmp_path, quick):
    from dataclasses import replace

    plan = Plan.from_grid(models=["tiny-bert"], targets=["neuron"], compilers=["trace"], scenarios=["latency"],
                          measure=replace(quick, profile=True))
    run_dir = run_plan(plan, out=tmp_path / "r", cache_dir=tmp_path / "c", progress=False)
    row = load(run_dir).iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]
    imports = [e for e in _events(host) if e["event"] == "import" and e["env"].get("NEURON_RT_VISIBLE_CORES")]
    profiled = [e for e in imports if e["env"].get("NEURON_RT_INSPECT_ENABLE") == "1"]
    measuring = [e for e in imports if not e["env"].get("NEURON_RT_INSPECT_ENABLE")]
    assert len(profiled) == 1 and measuring  # the variables reach the profiled worker only
    env = profiled[0]["env"]
    folder = run_dir / row["profile_dir"]
    assert env["NEURON_RT_INSPECT_OUTPUT_DIR"] == str(folder / "neuron")
    assert env["NEURON_RT_INSPECT_DEVICE_PROFILE"] == "1"  # a traced model: model mode
    assert env["NEURON_RT_VISIBLE_CORES"] == measuring[0]["env"]["NEURON_RT_VISIBLE_CORES"]  # the same core
    assert list(folder.glob("neuron/i-*_pid_*/*/*.ntff"))
    assert not (folder / "trace.json.gz").exists()  # never torch.profiler with the runtime's capture
    explorer = [e for e in _events(host) if e["event"] == "neuron-explorer"]
    assert explorer and explorer[0]["argv"] == ["view", "-d", str(folder / "neuron"), "--output-format", "summary-json"]
    assert row["profile_tool"].startswith("neuron runtime") and row["profile_device_ms"] == pytest.approx(17.0)
    assert "neuron-explorer total_time" in row["profile_note"]


def test_neuron_without_explorer_says_what_to_open_and_that_neuron_profile_has_ended(tmp_path):
    from bench.targets.neuron.profile import summarise

    trace = tmp_path / "neuron" / "i-0_pid_1" / "t" / "profile_nc_0_session_0.ntff"
    trace.parent.mkdir(parents=True)
    trace.write_bytes(b"x")
    legacy = summarise(tmp_path, {"tool": "t"}, lambda name: "/x/neuron-profile" if name == "neuron-profile" else None)
    assert "no longer supported from Neuron 2.30.0" in legacy["note"]
    none = summarise(tmp_path, {"tool": "t"}, lambda name: None)
    assert "no neuron-explorer on PATH" in none["note"]
    empty = summarise(tmp_path / "nothing", {"tool": "t"}, lambda name: None)
    assert "wrote no capture" in empty["note"]


def test_torchneuron_cells_capture_in_session_mode():
    from bench.targets import get

    target = get("neuron")
    native = SimpleNamespace(compiler="native-compile")
    traced = SimpleNamespace(compiler="trace")
    assert target.profile_env(native, Path("/p"))["NEURON_RT_INSPECT_DEVICE_PROFILE"] == "session"
    assert target.profile_env(traced, Path("/p"))["NEURON_RT_INSPECT_ENABLE"] == "1"


def test_with_kernels_on_a_device_operators_rank_by_device_time_only():
    ops = [{"op": "aten::mm", "calls": 2, "self_cpu_us": 50.0, "self_device_us": 300.0, "total_cpu_us": 60.0,
            "on": "device", "kind": "op"},
           # the same kernels as entries of their own, and a range over them: not counted again
           {"op": "void gemm_kernel<float>", "calls": 2, "self_cpu_us": 0.0, "self_device_us": 300.0,
            "total_cpu_us": 0.0, "on": "device", "kind": "kernel"},
           {"op": "Optimizer.step#AdamW.step", "calls": 1, "self_cpu_us": 5.0, "self_device_us": 300.0,
            "total_cpu_us": 5.0, "on": "device", "kind": "annotation"},
           {"op": "cudaLaunchKernel", "calls": 2, "self_cpu_us": 400.0, "self_device_us": 0.0, "total_cpu_us": 400.0,
            "on": "cpu", "kind": "op"},
           {"op": profiling.REQUEST_EVENT, "calls": 2, "self_cpu_us": 10.0, "self_device_us": 0.0,
            "total_cpu_us": 1000.0, "on": "cpu", "kind": "annotation"}]
    top = profiling.top_ops(ops, profiling.request_wall_us(ops), steps=2)
    assert top == [{"op": "aten::mm", "share": 0.3, "self_ms": 0.15, "calls": 1.0, "on": "device"}]
    assert profiling.ops_share(ops, 1000.0) == 0.3
    cpu_only = [dict(o, self_device_us=0.0, on="cpu") for o in ops]
    assert profiling.top_ops(cpu_only, 1000.0)[0]["op"] == "cudaLaunchKernel"  # no device: CPU time


def test_the_call_and_sync_split_follows_the_requests_of_every_copy_in_time_order():
    import numpy as np

    from bench.targets.infer import summarise_closed

    rng = np.random.default_rng(0)
    parts = []
    for _ in range(2):  # two model copies, their requests interleaved in time
        start = np.sort(rng.integers(0, 10**9, 50))
        call = rng.integers(10**5, 10**6, 50)
        parts.append({"start_ns": start, "returned_ns": start + call, "end_ns": start + call + 10**6,
                      "warmup": np.zeros(50, bool)})
    row, samples = summarise_closed(parts, SimpleNamespace(batch_size=1, measure=SimpleNamespace(trim_s=0.0)))
    wait = samples["latency_ns"] - samples["call_ns"]
    assert wait.min() == wait.max() == 10**6 and row["sync_ms_p50"] == 1.0
