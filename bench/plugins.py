"""Loading a built-in or plug-in object by name: "package.module:attr" (a class is instantiated)."""

from __future__ import annotations

import importlib
from typing import Any

from bench.errors import UsageError


def load(kind: str, name: str, builtin: dict[str, str], choices: str) -> Any:
    """The object `name` stands for: a built-in's spec, or a plug-in "package.module:attr"."""
    spec = builtin.get(name, name if ":" in name else None)
    if spec is None:
        raise UsageError(f"unknown {kind} {name!r} (choose from {choices})")
    module_name, attr = spec.split(":", 1)
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load {kind} {name!r}: {exc}") from None
    obj = obj() if isinstance(obj, type) else obj
    if not getattr(obj, "name", None):
        try:
            obj.name = name
        except (AttributeError, TypeError):  # not ours to name (the caller checks what it got)
            pass
    return obj
