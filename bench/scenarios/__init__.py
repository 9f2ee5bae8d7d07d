"""Scenario registry: name -> Scenario. Adding a scenario is one module and one line here.

A plug-in scenario (a user's own way of applying load) is named "package.module:attr",
where attr is a `bench.scenarios.base.Scenario` instance or subclass.

Names follow MLPerf LoadGen: `latency` is SingleStream, `throughput` is Offline, `server`
is Server; `generate` measures LLM decoding with vLLM's definitions.
"""

from __future__ import annotations

from functools import cache

from bench.errors import UsageError
from bench.plugins import load
from bench.scenarios.base import Column, MeasureReport, PrepareReport, Scenario, WorkerContext

__all__ = ["Column", "MeasureReport", "PrepareReport", "Scenario", "WorkerContext", "get", "names", "of"]

_BUILTIN = {
    "latency": "bench.scenarios.latency:SCENARIO",
    "throughput": "bench.scenarios.throughput:SCENARIO",
    "server": "bench.scenarios.server:SCENARIO",
    "generate": "bench.scenarios.generate:SCENARIO",
}


# A target whose system under test is not a model in a worker (the endpoint target: a server
# over HTTP) has its own implementation of a scenario name.
_FOR_TARGET = {
    ("endpoint", "latency"): "bench.scenarios.endpoint:LATENCY",
    ("endpoint", "throughput"): "bench.scenarios.endpoint:THROUGHPUT",
    ("endpoint", "server"): "bench.scenarios.endpoint:SERVER",
}


def names() -> list[str]:
    return list(_BUILTIN)


def is_known(name: str) -> bool:
    """A built-in name, or a plug-in spec ("package.module:attr")."""
    return name in _BUILTIN or ":" in name


@cache
def get(name: str, target: str | None = None) -> Scenario:
    """The scenario `name`, as `target` runs it (its own implementation where it has one)."""
    if target is not None and (target, name) in _FOR_TARGET:
        return load("scenario", _FOR_TARGET[(target, name)], {}, "")
    if target == "endpoint" and name in _BUILTIN:
        raise UsageError(f"-t endpoint runs the latency, throughput and server scenarios, not {name}")
    scenario = load("scenario", name, _BUILTIN, f"{', '.join(_BUILTIN)}, or package.module:attr")
    if not isinstance(scenario, Scenario):
        raise UsageError(f"scenario {name!r} is a {type(scenario).__name__}, not a bench.scenarios.base.Scenario")
    return scenario


def of(cell) -> Scenario:
    """The scenario that runs `cell` (its name, on its target)."""
    return get(cell.scenario, cell.target)
