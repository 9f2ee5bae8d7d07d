"""A wheel carries the model cards, suites and reference tables (users install it non-editable).

Builds the wheel from this checkout, installs it into a fresh directory away from the
checkout, and runs the CLI from there: `list models`, `list suites`, `run --suite smoke
--dry-run` must see the shipped files, and the package must come from that directory; a
plain install (no extras) declares what `report` needs, and `report` runs from it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    wheels = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools writes build/ and *.egg-info into the tree it builds
    source = tmp_path_factory.mktemp("source") / "trnbench"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".coverage*")

    def ignore(folder: str, names: list[str]) -> set[str]:  # results/ holds runs; only reference/ ships
        extra = {n for n in names if n != "reference"} if Path(folder) == ROOT / "results" else set()
        return set(skip(folder, names)) | extra

    shutil.copytree(ROOT, source, ignore=ignore)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("trnbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bench/data/models/tiny-bert.toml" in names and "bench/data/suites/smoke.toml" in names
    assert "bench/data/reference/neuron-published.csv" in names
    assert not any(n.startswith(("models/", "suites/", "results/")) for n in names)
    sources = {str(p.relative_to(source)) for p in (source / "bench").rglob("*.py")}
    assert sources <= set(names), f"modules left out of the wheel: {sorted(sources - set(names))}"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry).decode()
    assert "trnbench = bench.cli:main" in scripts and "neuron-bench" not in scripts
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    plain = [line for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert any(line.split()[1].startswith("matplotlib") for line in plain), plain  # report from a plain install
    target = tmp_path_factory.mktemp("site")
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]
    return target


def _cli(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1")
    env.pop("TRNBENCH_MODELS", None)
    env.pop("TRNBENCH_SUITES", None)
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def test_installed_wheel_lists_models_and_suites_and_plans_the_smoke_suite(installed, tmp_path):
    where = _cli(installed, tmp_path, "env", "--format", "json")
    assert where.returncode == 0, where.stderr
    probe = subprocess.run([sys.executable, "-c", "import bench; print(bench.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(installed)))
    assert probe.stdout.strip().startswith(str(installed)), probe.stdout  # not the checkout
    models = _cli(installed, tmp_path, "list", "models", "--format", "json")
    assert models.returncode == 0, models.stderr
    names = {m["model"] for m in json.loads(models.stdout)}
    assert {"tiny-bert", "bert-base-uncased", "tiny-llama"} <= names
    suites = _cli(installed, tmp_path, "list", "suites", "--format", "json")
    assert {"smoke", "inf2", "neuron-published"} <= {s["suite"] for s in json.loads(suites.stdout)}
    dry = _cli(installed, tmp_path, "run", "--suite", "smoke", "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    assert len(json.loads(dry.stdout)) == 26
    ref = _cli(installed, tmp_path, "compare", "--help")
    assert ref.returncode == 0


def test_report_runs_from_the_installed_wheel(installed, tmp_path):
    """A run and its HTML report, from the installed wheel, away from the checkout."""
    run = _cli(installed, tmp_path, "run", "-m", "tiny-bert", "--seq-len", "16", "--duration", "0.1",
               "--warmup", "0.02", "--min-samples", "6", "--rounds", "1", "--no-progress", "--out", "runs")
    assert run.returncode == 0, run.stderr[-2000:]
    report = _cli(installed, tmp_path, "report", "runs", "-o", "report.html")
    assert report.returncode == 0, report.stderr[-2000:]
    html = (tmp_path / "report.html").read_text()
    assert "tiny-bert" in html and "<img" in html  # the plots are in it


def test_an_empty_listing_prints_its_own_columns(tmp_path, monkeypatch, capsys):
    from bench import models
    from bench.cli import main

    monkeypatch.setattr(models, "registry", lambda: {})
    assert main(["list", "models", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip() == "model,family,task,input,params,default shape,pretrained"
    assert main(["list", "models", "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("| model | family | task |")
