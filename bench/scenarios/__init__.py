"""Scenario registry: name -> Scenario, the same for every target. Adding a scenario is one
module and one line here.

A scenario is a load profile (bench.scenarios.base); what a request is belongs to the target
(its verbs, bench.targets.requests), so every scenario runs on every target whose verbs it
accepts. A plug-in scenario (a user's own way of applying load) is named
"package.module:attr", where attr is a `bench.scenarios.base.Scenario` instance or subclass.

Names follow MLPerf LoadGen: `latency` is SingleStream, `throughput` is Offline, `server`
is Server; `generate` measures LLM decoding with vLLM's definitions.
"""

from __future__ import annotations

from functools import cache

from bench.errors import UsageError
from bench.plugins import load
from bench.scenarios import base
from bench.scenarios.base import Column, MeasureReport, PrepareReport, Scenario, WorkerContext

__all__ = ["Column", "MeasureReport", "PrepareReport", "Scenario", "WorkerContext", "get", "names", "of",
           "requests_of"]

_BUILTIN = {
    "latency": "bench.scenarios.latency:SCENARIO",
    "throughput": "bench.scenarios.throughput:SCENARIO",
    "server": "bench.scenarios.server:SCENARIO",
    "generate": "bench.scenarios.generate:SCENARIO",
    "train": "bench.scenarios.train:SCENARIO",
}


def names() -> list[str]:
    return list(_BUILTIN)


def is_known(name: str) -> bool:
    """A built-in name, or a plug-in spec ("package.module:attr")."""
    return name in _BUILTIN or ":" in name


@cache
def get(name: str) -> Scenario:
    """The scenario `name` (a built-in, or a plug-in "package.module:attr")."""
    scenario = load("scenario", name, _BUILTIN, f"{', '.join(_BUILTIN)}, or package.module:attr")
    if not isinstance(scenario, Scenario):
        raise UsageError(f"scenario {name!r} is a {type(scenario).__name__}, not a bench.scenarios.base.Scenario")
    return scenario


def of(cell) -> Scenario:
    """The scenario that runs `cell`."""
    return get(cell.scenario)


def requests_of(cell):
    """The verb `cell`'s target times under `cell`'s scenario (bench.targets.requests.Requests)."""
    return base.requests_of(cell, of(cell))
