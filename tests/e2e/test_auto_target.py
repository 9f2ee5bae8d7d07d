"""`-t auto`: the first available of neuron, cuda, cpu, and the row says why the others were passed over."""

from __future__ import annotations

import pytest

from bench import Measure, Plan, load, run_plan
from bench.cli import main as cli_main
from bench.errors import UsageError
from bench.targets import Availability
from bench.targets import get as get_target

QUICK = Measure(rounds=1, warmup_s=0.05, min_duration_s=0.2, max_duration_s=0.4, min_samples=20, target_ci=0.05, trim_s=0.05)


def _available(monkeypatch, **ok: bool) -> None:
    """Pretend each named target is (un)available, whatever this host has."""
    for name, flag in ok.items():
        reason = "" if flag else f"test: no {name} here"
        monkeypatch.setattr(type(get_target(name)), "availability",
                            lambda self, flag=flag, reason=reason: Availability(flag, reason))


def test_auto_falls_back_to_cpu_and_records_why(monkeypatch, tmp_path):
    _available(monkeypatch, neuron=False, cuda=False)
    plan = Plan.from_grid(models=["tiny-bert"], targets=["auto"], measure=QUICK)
    (cell,) = plan.cells
    assert (cell.target, cell.compiler) == ("cpu", "eager")
    explicit = Plan.from_grid(models=["tiny-bert"], targets=["cpu"], measure=QUICK).cells[0]
    assert cell.cell_id == explicit.cell_id  # the notes are not part of the cell key
    row = load(run_plan(plan, out=tmp_path, progress=False)).iloc[0]
    assert row["status"] in ("ok", "unstable") and row["target"] == "cpu"
    notes = row["target_notes"]
    assert notes.startswith("auto: picked cpu")
    assert "neuron passed over: test: no neuron here" in notes and "cuda passed over: test: no cuda here" in notes


def test_auto_prefers_neuron_then_cuda(monkeypatch):
    _available(monkeypatch, neuron=True, cuda=True)
    cell = Plan.from_grid(models=["tiny-bert"], targets=["auto"]).cells[0]
    assert (cell.target, cell.compiler, cell.target_notes) == ("neuron", "trace", "auto: picked neuron")
    _available(monkeypatch, neuron=False)
    cell = Plan.from_grid(models=["tiny-bert"], targets=["auto"]).cells[0]
    assert (cell.target, cell.compiler) == ("cuda", "eager")
    assert cell.target_notes == "auto: picked cuda; neuron passed over: test: no neuron here"


def test_auto_with_a_compiler_the_pick_lacks_names_the_pick(monkeypatch):
    _available(monkeypatch, neuron=True)
    with pytest.raises(UsageError, match=r"unknown compiler 'jit' for target neuron.*auto: picked neuron"):
        Plan.from_grid(models=["tiny-bert"], targets=["auto"], compilers=["jit"])


def test_auto_with_nothing_available_is_a_usage_error(monkeypatch, capsys):
    _available(monkeypatch, neuron=False, cuda=False, cpu=False)
    assert cli_main(["run", "-m", "tiny-bert", "-t", "auto", "--dry-run"]) == 2
    assert "no target is available" in capsys.readouterr().err
