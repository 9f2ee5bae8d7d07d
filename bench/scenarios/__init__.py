"""Scenario registry. Each scenario module has two halves:

- `run(call, target, cell, stop_event, leader) -> dict of numpy arrays` runs in a worker;
- `summarise(parts, cell) -> (row columns, raw sample arrays)` runs in the orchestrator
  over the parts returned by all of a cell's model processes.

Names follow MLPerf LoadGen: `latency` is SingleStream, `throughput` is Offline.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SCENARIOS = {
    "latency": "bench.scenarios.latency",
    "throughput": "bench.scenarios.throughput",
}


def names() -> list[str]:
    return list(_SCENARIOS)


def get(name: str) -> ModuleType:
    return importlib.import_module(_SCENARIOS[name])
