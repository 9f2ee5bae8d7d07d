"""Scenario registry. Each scenario module has two halves:

- `run(fn, inputs, target, cell, stop_event, leader) -> dict of numpy arrays` runs in a worker;
- `summarise(parts, cell) -> (row columns, raw sample arrays)` runs in the orchestrator
  over the parts returned by all of a cell's model processes.

Optional hooks, for scenarios the closed loop does not fit:
- `worker_measure(state, payload)` replaces `run` in the worker (it sees the worker's
  state: process index, prepared model, target, stop event; `payload["start_ns"]` is the
  common start time the orchestrator picked) — `server`, `generate`;
- `worker_prepare(state, payload)` replaces the worker's preparation — `generate`;
- `execute(pool, cell, cache_root, record)` replaces `runner.execute_cell` in the
  orchestrator (`runner.execute` dispatches) and may `record(cell, fields, samples)` extra
  rows — `server`'s max-rate search;
- `check(cell)` validates a cell at plan time (raises UsageError).
A summary may set `stability` itself (the runner's spread rules do not fit every scenario).

Names follow MLPerf LoadGen: `latency` is SingleStream, `throughput` is Offline, `server`
is Server; `generate` measures LLM decoding with vLLM's definitions.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SCENARIOS = {
    "latency": "bench.scenarios.latency",
    "throughput": "bench.scenarios.throughput",
    "server": "bench.scenarios.server",
    "generate": "bench.scenarios.generate",
}


def names() -> list[str]:
    return list(_SCENARIOS)


def get(name: str) -> ModuleType:
    return importlib.import_module(_SCENARIOS[name])


def hook(name: str, attr: str):
    """A scenario's optional hook (see above), or None."""
    return getattr(get(name), attr, None)


_PLAN_CHECKED = ("server", "generate")  # scenarios with a check(); the others import scipy


def check(cell) -> None:
    """Plan-time validation of a cell by its scenario, where the scenario has any."""
    if cell.scenario not in _PLAN_CHECKED:
        return
    fn = hook(cell.scenario, "check")
    if fn is not None:
        fn(cell)
