"""A target outside bench/ that is a new accelerator kind (tests/support/plugin_accelerator.py): run end
to end here, and what a cell of it asks Ray for (tests/e2e/test_ray.py runs it on a Ray node)."""

from __future__ import annotations

from bench import Measure, Plan, load, run_plan
from bench.execute.placement import need_for

SPEC = "tests.support.plugin_accelerator:FakeAccelerator"
QUICK = Measure(rounds=3, max_rounds=3, warmup_s=0.02, min_duration_s=0.15, min_samples=9)


def test_a_new_accelerator_kind_runs_end_to_end(tmp_path):
    plan = Plan.from_grid(models=["tiny-bert"], targets=[SPEC], seq_lens=[16], threads_per_worker=1, measure=QUICK)
    row = load(run_plan(plan, out=tmp_path, progress=False)).iloc[0]
    assert row["status"] in ("ok", "unstable"), row["error"]
    assert row["target"] == SPEC and row["accelerator"] == "fake-accel" and row["rounds"] == 3
    assert row["cosine"] > 0.9999


def test_it_asks_ray_for_its_own_resource_one_per_copy():
    from bench import targets

    t = targets.get(SPEC)
    assert t.kind == "fake-accel" and t.verbs == ("infer",)
    cell = Plan.from_grid(models=["tiny-bert"], targets=[SPEC], scenarios=["throughput"], n_models=2,
                          threads_per_worker=1, measure=QUICK).cells[0]
    nodes = [{"CPU": 8, "fake_accel": 4}, {"CPU": 4}]
    need = need_for(cell, None, nodes)
    assert need.resources == {"fake_accel": 2} and need.num_gpus == 0 and need.accelerated
    assert need.fits(nodes[0]) and not need.fits(nodes[1])
    assert need_for(cell, "trn1.2xlarge", nodes).resources["instance:trn1.2xlarge"] == 1
