"""The Ray executor: every cell a Ray task, rows streamed back into one results directory.

One local Ray cluster (2 CPUs, advertising instance:test-a and instance:test-b) serves the
module; the node-death test adds a second node to it and removes it mid-cell. The CLI test
starts its own local Ray instance in a subprocess (`--executor ray` without an address).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray")

from bench import Measure, Plan, UsageError, UserModel  # noqa: E402
from bench.execute.ray import (  # noqa: E402
    RayExecutor,
    _why_not,
    need_for,
)
from bench.execute.sweep import executor_from_args as from_args  # noqa: E402
from bench.execute.sweep import run_plan  # noqa: E402
from bench.plan.cell import Cell  # noqa: E402
from bench.results.store import read_meta, read_rows  # noqa: E402
from bench.targets.neuron import NEURON_CORES  # noqa: E402
from bench.targets.neuron import OnRayCores as _OnRayCores  # noqa: E402
from tests.support.paths import ROOT  # noqa: E402

MEASURED = ("ok", "unstable")  # measured rows (a busy 2-core runner makes some unstable)
TINY = Measure(rounds=1, warmup_s=0.02, min_duration_s=0.1, max_duration_s=0.2, min_samples=10, target_ci=0.05, trim_s=0.02)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster for this module: 2 CPUs; the tests' plug-ins importable on its workers."""
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "TRNBENCH_CACHE")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else [])])
    os.environ["TRNBENCH_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, connect=True,
                head_node_args={"num_cpus": 2, "include_dashboard": False,
                                "resources": {"instance:test-a": 1, "instance:test-b": 1, "fake_accel": 2},
                                # notice a dead node within ~2 s (Ray's default is tens of seconds)
                                "_system_config": {"health_check_period_ms": 500,
                                                   "health_check_timeout_ms": 500,
                                                   "health_check_failure_threshold": 3}})
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _mlp_plan(target: str = "cpu", scenarios=("latency",), compiler_args=(), name: str = "mlp") -> Plan:
    from tests.support.plugins import small_mlp

    return Plan.from_grid(models=[UserModel(name, small_mlp)], targets=[target], scenarios=list(scenarios),
                          compiler_args=list(compiler_args), measure=TINY)


# -- the smoke suite through the CLI's own local Ray -------------------------------------------------


def test_smoke_suite_through_ray_matches_the_local_plan(tmp_path):
    """`trnbench run --suite smoke --executor ray` (no address: a new local Ray instance)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TRNBENCH_CACHE=str(tmp_path / "cache"))
    env.pop("RAY_ADDRESS", None)
    args = ["--warmup", "0.02", "--duration", "0.1", "--max-duration", "0.2", "--min-samples", "10"]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--suite", "smoke", *args,
                           "--executor", "ray", "--out", str(tmp_path), "--no-progress", "--format", "csv"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    wall = time.perf_counter() - t0
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    run_dir = next(p for p in tmp_path.iterdir() if (p / "run.json").is_file())
    rows = read_rows(run_dir)
    # What the local executor records for the same flags: the plan's cells, in order, once each.
    plan = Plan.from_suite("smoke", measure={"warmup_s": 0.02, "min_duration_s": 0.1, "max_duration_s": 0.2,
                                             "min_samples": 10})
    assert read_meta(run_dir)["plan"] == json.loads(json.dumps(plan.to_dict()))  # no executor keys
    assert sorted(r["cell_id"] for r in rows) == sorted(c.cell_id for c in plan.cells)
    by_id = {r["cell_id"]: r for r in rows}
    for cell in plan.cells:
        row = by_id[cell.cell_id]
        assert {k: row[k] for k in cell.key()} == json.loads(json.dumps(cell.key()))
        assert row["status"] in MEASURED, (cell.label, row["status"], row.get("error"))
        assert row["samples"] >= 10 and row["latency_ms_p50"] > 0
        assert row["hostname"] == socket.gethostname() and row["ray_node_id"]
    print(f"smoke through ray (CLI, 26 cells): {wall:.1f} s")


# -- placement per instance type, streaming rows, resume ------------------------------------------------


def test_on_runs_each_cell_per_instance_type_and_resumes(cluster, tmp_path):
    plan = _mlp_plan(scenarios=("latency", "throughput"))
    ids = {f"{c.cell_id}@{on}" for c in plan.cells for on in ("test-a", "test-b")}
    seen: list[dict] = []

    def interrupt_after_first(row):
        seen.append(row)
        raise KeyboardInterrupt  # the driver is killed after its first recorded row

    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, out=tmp_path, progress=False, on_row=interrupt_after_first,
                 executor=RayExecutor(on="test-a,test-b"))
    run_dir = next(tmp_path.iterdir())
    assert read_meta(run_dir)["plan"]["on"] == ["test-a", "test-b"]
    assert [r["cell_id"] for r in read_rows(run_dir)] == [seen[0]["cell_id"]]
    with pytest.raises(UsageError, match="executor ray"):
        run_plan(plan, resume=run_dir, progress=False)  # the local executor cannot finish it
    with pytest.raises(UsageError, match="same instance types"):
        run_plan(plan, resume=run_dir, progress=False, executor=RayExecutor(on="test-a"))

    run_plan(plan, resume=run_dir, progress=False, executor=RayExecutor())  # `on` comes from run.json
    rows = read_rows(run_dir)
    assert sorted(r["cell_id"] for r in rows) == sorted(ids)  # each once: the recorded one was skipped
    for r in rows:
        on = r["cell_id"].split("@")[1]
        assert r["on_instance"] == on and r["instance_type"] == on  # no DMI type here: the node's label
        assert r["status"] in MEASURED, r.get("error")
    assert {p.stem for p in (run_dir / "samples").glob("*.npz")} == ids


def test_instance_type_nobody_offers_is_skipped(cluster, tmp_path):
    run_dir = run_plan(_mlp_plan(), out=tmp_path, progress=False, executor=RayExecutor(on=["inf2.xlarge"]))
    (row,) = read_rows(run_dir)
    assert row["status"] == "skipped" and row["instance_type"] == "inf2.xlarge"
    assert "instance:inf2.xlarge" in row["error"] and "ray start" in row["error"]


# -- failures of the process or node running a cell ---------------------------------------------------------


def test_dead_task_process_is_a_failed_row_and_the_sweep_goes_on(cluster, tmp_path):
    plan = Plan(name="mixed", cells=_mlp_plan("tests.support.plugins:DiesInRayTask").cells + _mlp_plan().cells)
    run_dir = run_plan(plan, out=tmp_path, progress=False, executor=RayExecutor(retries=0))
    rows = {r["target"]: r for r in read_rows(run_dir)}
    dead = rows["tests.support.plugins:DiesInRayTask"]
    assert dead["status"] == "failed" and "died" in dead["error"], dead["error"]
    assert dead["error_detail"]
    assert rows["cpu"]["status"] in MEASURED


def test_dead_task_process_is_retried(cluster, tmp_path):
    marker = tmp_path / "died-once"
    plan = _mlp_plan("tests.support.plugins:DiesInRayTask", compiler_args=[f"--die-once={marker}"])
    run_dir = run_plan(plan, out=tmp_path / "runs", progress=False, executor=RayExecutor(retries=1))
    (row,) = read_rows(run_dir)
    assert marker.exists()  # the first attempt died ...
    assert row["status"] in MEASURED, row.get("error")  # ... the retry measured


def test_a_cell_whose_process_dies_every_time_fails_after_its_retries(cluster, tmp_path):
    attempts = tmp_path / "attempts"
    plan = _mlp_plan("tests.support.plugins:DiesInRayTask", compiler_args=[f"--count={attempts}"])
    run_dir = run_plan(plan, out=tmp_path / "runs", progress=False, executor=RayExecutor(retries=2))
    (row,) = read_rows(run_dir)
    pids = attempts.read_text().split()
    assert len(pids) == 3 and len(set(pids)) == 3  # the first try and two retries, each in a new process
    assert row["status"] == "failed" and "died" in row["error"] and "(3 attempts)" in row["error"], row["error"]


def test_a_cell_killed_by_rays_memory_monitor_is_a_failed_row_saying_so(tmp_path):
    """A cluster of its own (in a subprocess) whose memory monitor kills any task once the node
    uses 2 % of its memory: every cell's task is killed for real, retried, then recorded."""
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
import ray
from ray.cluster_utils import Cluster
from bench import Measure, Plan, UserModel, run_plan
from bench.execute.ray import RayExecutor
from bench.results.store import read_rows
from tests.support.plugins import small_mlp

if __name__ == "__main__":
    c = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1, "include_dashboard": False,
        "_system_config": {{"memory_usage_threshold": 0.02, "memory_monitor_refresh_ms": 50}}}})
    try:
        m = Measure(rounds=1, warmup_s=0.02, min_duration_s=0.1, max_duration_s=0.2, min_samples=10)
        plan = Plan.from_grid(models=[UserModel("mlp", small_mlp)], scenarios=["latency", "throughput"], measure=m)
        run_dir = run_plan(plan, out={str(tmp_path)!r}, progress=False,
                           executor=RayExecutor(address=c.address, retries=1))
        print(json.dumps([dict(status=r["status"], error=r.get("error")) for r in read_rows(run_dir)]))
    finally:
        ray.shutdown()
        c.shutdown()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "failed"
        assert "memory monitor killed" in row["error"] and "(2 attempts)" in row["error"], row["error"]


def test_node_dying_mid_cell(cluster, tmp_path):
    """A node is removed while it runs a cell: that cell and the one queued for it fail; the rest run."""
    marker = tmp_path / "stalled"
    plan = _mlp_plan("tests.support.plugins:StallsOnDoomedNode", scenarios=("latency", "throughput"),
                     compiler_args=[f"--stall-marker={marker}"])
    node = cluster.add_node(num_cpus=1, resources={"instance:doomed": 1}, include_dashboard=False)
    cluster.wait_for_nodes()
    result: dict = {}
    executor = RayExecutor(on="test-a,doomed", retries=0, check_every_s=0.5)
    thread = threading.Thread(target=lambda: result.update(
        run_dir=run_plan(plan, out=tmp_path / "runs", progress=False, executor=executor)))
    thread.start()
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the doomed node never started its cell"
    cluster.remove_node(node, allow_graceful=False)
    thread.join(timeout=90)
    assert not thread.is_alive(), "the sweep did not finish after the node died"
    rows = {r["cell_id"]: r for r in read_rows(result["run_dir"])}
    assert len(rows) == 4
    for cell in plan.cells:
        assert rows[f"{cell.cell_id}@test-a"]["status"] in MEASURED
        assert rows[f"{cell.cell_id}@doomed"]["status"] == "failed"
    errors = [rows[f"{c.cell_id}@doomed"]["error"] for c in plan.cells]
    assert any("running the cell died" in e for e in errors), errors  # the one it was running
    assert any("no live node offers" in e and "instance:doomed" in e for e in errors), errors  # the queued one


# -- what a cell asks for ---------------------------------------------------------------------------------------


def test_resource_requests():
    inf2_xl = {"CPU": 4, NEURON_CORES: 2, "instance:inf2.xlarge": 1}
    trn1 = {"CPU": 128, NEURON_CORES: 32, "instance:trn1.32xlarge": 1}
    gpu = {"CPU": 8, "GPU": 1, "instance:g5.2xlarge": 1}
    nodes = [inf2_xl, trn1, gpu]
    trace = Cell("tiny-bert", target="neuron", compiler="trace", scenario="throughput", n_models=2, workers_per_model=2)
    need = need_for(trace, "inf2.xlarge", nodes)
    assert need.resources == {NEURON_CORES: 2, "instance:inf2.xlarge": 1} and need.num_cpus == 4
    assert need.fits(inf2_xl) and not need.fits(trn1)
    dp = Cell("tiny-bert", target="neuron", compiler="trace-dp", scenario="throughput", batch_size=32)
    assert need_for(dp, "trn1.32xlarge", nodes).resources[NEURON_CORES] == 32  # all cores, as locally
    cuda = Cell("tiny-bert", target="cuda", scenario="throughput", n_models=4, workers_per_model=1)
    need = need_for(cuda, None, nodes)
    assert need.num_gpus == 1 and need.fits(gpu) and not need.fits(trn1)
    cpu = Cell("tiny-bert", scenario="throughput", n_models=2, workers_per_model=1, threads_per_worker=64)
    need = need_for(cpu, "g5.2xlarge", nodes)
    assert need.num_cpus == 8 and need.num_gpus == 0  # capped at the node
    # every cell takes a whole node's CPUs (the smallest that fits): one cell at a time per node
    small = Cell("tiny-bert", threads_per_worker=1)
    assert need_for(small, None, nodes).num_cpus == 4
    assert need_for(small, "trn1.32xlarge", nodes).num_cpus == 128
    assert need_for(cpu, None, nodes).num_cpus == 128  # 2 x 64 threads: only trn1 is big enough
    # why a cell cannot be placed: a type nobody advertises, or a type without the accelerator
    assert "no node advertises instance:trn2.48xlarge" in _why_not(
        "trn2.48xlarge", need_for(trace, "trn2.48xlarge", nodes), nodes)
    assert "the g5.2xlarge nodes have 8 CPU, 1 GPU, 0 neuron_cores" in _why_not(
        "g5.2xlarge", need_for(trace, "g5.2xlarge", nodes), nodes)


def test_neuron_copies_get_the_cores_ray_assigned():
    from bench import targets

    neuron = _OnRayCores(targets.get("neuron"), ["6", "4", "5", "7"])
    dp = Cell("tiny-bert", target="neuron", compiler="trace-dp", n_models=2)
    assert [neuron.worker_env(dp, i)["NEURON_RT_VISIBLE_CORES"] for i in range(2)] == ["4-5", "6-7"]
    trace = Cell("tiny-bert", target="neuron", compiler="trace", n_models=4)
    assert [neuron.worker_env(trace, i)["NEURON_RT_VISIBLE_CORES"] for i in range(4)] == ["4", "5", "6", "7"]
    assert neuron.start_method == "spawn"


def test_unreachable_cluster_is_one_line_and_no_results_directory(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "-m", "tiny-bert", "--executor", "ray",
                           "--ray-address", "127.0.0.1:1", "--out", str(tmp_path / "runs")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("trnbench: error: cannot connect to the Ray cluster")
    assert not (tmp_path / "runs").exists()


def test_ray_flags_need_the_ray_executor():
    from argparse import Namespace

    assert from_args(Namespace(executor="local", ray_address=None, on=None, retries=None)) is None
    with pytest.raises(UsageError, match="--on: only with --executor ray"):
        from_args(Namespace(executor="local", ray_address=None, on=["inf2.xlarge"], retries=None))
    ex = from_args(Namespace(executor="ray", ray_address="auto", on=["a", "b", "a"], retries=None))
    assert (ex.address, ex.on, ex.retries) == ("auto", ["a", "b"], 1)
    with pytest.raises(UsageError, match="retries"):
        RayExecutor(retries=-1)
    from bench.cli import main

    assert main(["run", "-m", "tiny-bert", "--on", "inf2.xlarge", "--dry-run"]) == 0  # a dry run runs nothing
    assert main(["run", "-m", "tiny-bert", "--retries", "2"]) == 2


# -- one cell runner: the same rounds as the local executor, a plug-in accelerator's resource -------


def test_the_same_plan_local_and_on_ray_keeps_the_same_rounds(cluster, tmp_path):
    """rounds.jsonl holds the same (cell, round) structure whichever executor measured it."""
    plan = Plan.from_grid(models=["tiny-bert"], scenarios=["latency", "throughput"], seq_lens=[16],
                          threads_per_worker=1, measure=Measure(rounds=3, max_rounds=3, warmup_s=0.02,
                                                                min_duration_s=0.15, min_samples=9))

    def structure(run_dir):
        lines = read_rows(run_dir, "rounds.jsonl")
        return sorted((r["cell_id"], r["round"]) for r in lines), [r["round"] for r in lines]

    local = run_plan(plan, out=tmp_path / "local", progress=False)
    on_ray = run_plan(plan, out=tmp_path / "ray", progress=False, executor=RayExecutor())
    assert structure(local)[0] == structure(on_ray)[0] and len(structure(local)[0]) == 6
    assert structure(local)[1] == structure(on_ray)[1] == [0, 0, 1, 1, 2, 2]  # pass by pass, spread over the run
    assert all(r["ray_node_id"] for r in read_rows(on_ray)) and all(r["rounds"] == 3 for r in read_rows(on_ray))


def test_a_plugin_accelerator_runs_on_the_ray_node_that_offers_it(cluster, tmp_path):
    """One unit of `fake_accel` per model copy (the node offers 2): one copy runs, three are
    skipped with what no node offers."""
    rows = {}
    for n in (1, 3):
        plan = Plan.from_grid(models=["tiny-bert"], targets=["tests.support.plugin_accelerator:FakeAccelerator"],
                              scenarios=["throughput"], n_models=n, seq_lens=[16], threads_per_worker=1, measure=TINY)
        (rows[n],) = read_rows(run_plan(plan, out=tmp_path / str(n), progress=False, executor=RayExecutor()))
    assert rows[1]["status"] in MEASURED, rows[1]["error"]
    assert rows[1]["accelerator"] == "fake-accel" and rows[1]["ray_node_id"]
    assert rows[3]["status"] == "skipped" and "3 fake_accel" in rows[3]["error"]
