"""A fake Neuron host for tests: the stand-in SDK, fake tools on PATH, fake /dev/neuron*.

See tests/stand_ins/README.md for what each stand-in follows. The `host` fixture (conftest.py)
gives a test one of these; `.sdk()`, `.devices()`, `.neuron_ls()` change it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.targets.neuron import inventory
from tests.support.paths import STAND_INS


class Host:
    """A fake Neuron host: stand-in SDK importable, fake tools on PATH, fake /dev/neuron*."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.tmp = tmp_path
        self.mp = monkeypatch
        self.log = tmp_path / "standin.jsonl"
        self.dev = tmp_path / "dev"
        self.dev.mkdir()
        monkeypatch.setenv("PATH", f"{STAND_INS / 'bin'}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("TRNBENCH_STANDIN_LOG", str(self.log))
        monkeypatch.setenv("TRNBENCH_STANDIN_LOG_DIR", str(tmp_path))
        monkeypatch.setenv("TRNBENCH_DEV_GLOB", str(self.dev / "neuron*"))
        self.sdk("sdk")
        self.devices(1)
        self.neuron_ls("inf2.xlarge.json")

    def sdk(self, flavour: str) -> None:
        """Put a stand-in torch_neuronx on PYTHONPATH (probe subprocess) and sys.path (spawned workers)."""
        path = str(STAND_INS / flavour)
        self.mp.setenv("PYTHONPATH", path)
        self.mp.syspath_prepend(path)

    def devices(self, n: int) -> None:
        for p in self.dev.glob("neuron*"):
            p.unlink()
        for i in range(n):
            (self.dev / f"neuron{i}").touch()
        inventory.clear_cache()

    def neuron_ls(self, name: str) -> None:
        self.mp.setenv("TRNBENCH_STANDIN_NEURON_LS", str(STAND_INS / "neuron_ls" / name))
        inventory.clear_cache()

    def ls_version(self, version: str) -> None:
        """How the stand-in neuron-ls behaves: "2.33" (-j), "2.34" (--output-format json), "none"."""
        self.mp.setenv("TRNBENCH_STANDIN_NEURON_LS_VERSION", version)
        inventory.clear_cache()

    def instance(self, name: str) -> None:
        """The EC2 instance type the DMI product name reports."""
        dmi = self.tmp / "product_name"
        dmi.write_text(name + "\n")
        self.mp.setenv("TRNBENCH_DMI_PATH", str(dmi))

    def events(self, kind: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return [r for r in rows if kind is None or r["event"] == kind]

    def worker_imports(self) -> list[dict]:
        """Import events from worker processes (not from the availability probe)."""
        return [e for e in self.events("import") if any("spawn_main" in a for a in e["argv"])]
