"""TOML suites: `suites/<name>.toml` -> the measure settings and one set of grid axes per sweep.

Pure parsing and type checking (no registries): `bench.plan.grid` turns the axes into cells.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.paths import suite_dirs
from bench.plan.cell import Measure
from bench.tomlfile import read_toml


def read_suite(name_or_path: str) -> tuple[str, dict[str, Any], str]:
    """(name, parsed TOML, source path) of a suite name or file."""
    path = find_suite(name_or_path)
    return path.stem, read_toml(path), str(path)


def sweeps(data: dict[str, Any], source: str, overrides: dict[str, Any]) -> tuple[Measure, list[dict[str, Any]], str]:
    """(measure, one dict of grid axes per [[sweep]], description); `overrides` replace axes and
    measure keys (`overrides["measure"]`)."""
    overrides = dict(overrides)
    _check_keys(data, {"description", "measure", "sweep"}, source, "suite")
    if not isinstance(data.get("measure", {}), dict):
        raise UsageError(f"{source}: [measure] must be a table")
    if not isinstance(data.get("description", ""), str):
        raise UsageError(f"{source}: description must be a string")
    measure_data = dict(data.get("measure", {}))
    _check_keys(measure_data, {f.name for f in fields(Measure)}, source, "[measure]")
    measure_data.update({k: v for k, v in overrides.pop("measure", {}).items() if v is not None})
    measure = Measure(**measure_data)
    tables = data.get("sweep")
    if not isinstance(tables, list) or not tables or not all(isinstance(s, dict) for s in tables):
        raise UsageError(f"{source}: a suite needs at least one [[sweep]] table")
    out: list[dict[str, Any]] = []
    for i, sweep in enumerate(tables):
        where = f"{source}: [[sweep]] #{i + 1}"
        _check_keys(sweep, set(SWEEP_KEYS), source, f"[[sweep]] #{i + 1}")
        kwargs: dict[str, Any] = {}
        for key, (arg, kind) in SWEEP_KEYS.items():
            if key in sweep:
                kwargs[arg] = _typed(sweep[key], kind, f"{where}: {key}")
        if "models" not in kwargs:
            raise UsageError(f"{where}: 'models' is required")
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        out.append(kwargs)
    return measure, out, str(data.get("description", ""))


# suite key -> (from_grid argument, expected type)
SWEEP_KEYS: dict[str, tuple[str, str]] = {
    "models": ("models", "list[str]"),
    "targets": ("targets", "list[str]"),
    "compilers": ("compilers", "list[str]"),
    "dtypes": ("dtypes", "list[str]"),
    "scenarios": ("scenarios", "list[str]"),
    "batch_sizes": ("batch_sizes", "list[int]"),
    "seq_lens": ("seq_lens", "list[int]"),
    "image_sizes": ("image_sizes", "list[int]"),
    "weights": ("weights", "str"),
    "compiler_args": ("compiler_args", "list[str]"),
    "n_models": ("n_models", "int"),
    "workers_per_model": ("workers_per_model", "int"),
    "threads_per_worker": ("threads_per_worker", "int"),
    "rates": ("rates", "list[float]"),
    "find_max_rate": ("find_max_rate", "bool"),
    "p99_bound_ms": ("p99_bound_ms", "float"),
    "burstiness": ("burstiness", "float"),
    "output_lens": ("output_lens", "list[int]"),
    "grad_accums": ("grad_accums", "list[int]"),
    "optimizers": ("optimizers", "list[str]"),
    "precisions": ("precisions", "list[str]"),
    "dps": ("dps", "list[int]"),
    # an OpenAI-compatible server (-t endpoint): its --url, --launch, --slo, ... as one table
    "endpoint": ("endpoint", "table"),
}
ENDPOINT_KEYS = {"url": "str", "api": "str", "concurrency": "list[int]", "tokenizer": "str", "dataset": "str",
                 "slo": "str", "api_key_env": "str", "launch": "str"}


def _typed(value: Any, kind: str, where: str) -> Any:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    ok = {
        "str": lambda v: isinstance(v, str),
        "int": is_int,
        "float": lambda v: is_int(v) or isinstance(v, float),
        "bool": lambda v: isinstance(v, bool),
        "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "list[int]": lambda v: isinstance(v, list) and all(is_int(x) for x in v),
        "list[float]": lambda v: isinstance(v, list) and all(is_int(x) or isinstance(x, float) for x in v),
        "table": lambda v: isinstance(v, dict),
    }[kind](value)
    if ok and kind == "table":
        unknown = sorted(set(value) - set(ENDPOINT_KEYS))
        if unknown:
            raise UsageError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(ENDPOINT_KEYS))})")
        return {k: _typed(v, ENDPOINT_KEYS[k], f"{where}.{k}") for k, v in value.items()}
    if not ok:
        raise UsageError(f"{where} must be {kind.replace('list[', 'a list of ').rstrip(']')}, got {value!r}")
    if isinstance(value, list) and not value:
        raise UsageError(f"{where} must not be empty")
    return value


def _check_keys(data: dict[str, Any], allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(
            f"{source}: unknown key {unknown[0]!r} in {where}{_line_of(source, unknown[0])} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )


def _line_of(source: str, key: str) -> str:
    """' (line N)' where `key = ...` first appears in the file, for error messages."""
    try:
        for n, line in enumerate(Path(source).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip().startswith(f"{key} ") or line.strip().startswith(f"{key}="):
                return f" (line {n})"
    except OSError:
        pass
    return ""


def find_suite(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or os.sep in name_or_path:
        if not path.is_file():
            raise UsageError(f"suite file not found: {name_or_path}")
        return path
    for d in suite_dirs():
        candidate = d / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(list_suites()) or "none"
    raise UsageError(f"unknown suite {name_or_path!r} (known: {known})")


def list_suites() -> list[str]:
    names: list[str] = []
    for d in suite_dirs():
        names.extend(p.stem for p in sorted(d.glob("*.toml")) if p.stem not in names)
    return names
