"""Target registry: name -> Target. Adding a target is one module and one line here.

A plug-in target (for tests or a user's own backend) is named "package.module:attr".
"""

from __future__ import annotations

import functools

from bench.errors import UsageError
from bench.plugins import load
from bench.targets.base import Availability, Prepared, Target

_BUILTIN = {
    "cpu": "bench.targets.cpu:CpuTarget",
    "cuda": "bench.targets.cuda:CudaTarget",
    "neuron": "bench.targets.neuron:NeuronTarget",
    "endpoint": "bench.targets.endpoint:EndpointTarget",
}

__all__ = ["Availability", "Prepared", "Target", "get", "names", "pick_auto"]

AUTO_ORDER = ("neuron", "cuda", "cpu")


def names() -> list[str]:
    return list(_BUILTIN)


def pick_auto() -> tuple[str, str]:
    """`-t auto`: the first available of neuron, cuda, cpu, and why the others were passed over."""
    passed: list[str] = []
    for name in AUTO_ORDER:
        a = get(name).availability()
        if a.ok:
            notes = f"auto: picked {name}"
            return name, "; ".join([notes, *passed])
        passed.append(f"{name} passed over: {a.reason}")
    raise UsageError("-t auto: no target is available (" + "; ".join(passed) + ")")


@functools.cache
def get(name: str) -> Target:
    return load("target", name, _BUILTIN, f"{', '.join(_BUILTIN)}, or auto")
