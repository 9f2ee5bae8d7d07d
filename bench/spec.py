"""What to run: a Cell is one measurement, a Plan is an ordered list of cells.

Plans come from CLI flags (`Plan.from_grid`) or from a TOML suite (`Plan.from_suite`).
Everything here is plain data: no torch, so planning a large sweep is instant.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.paths import suite_dirs
from bench.tomlfile import read_toml

SCENARIOS = ("latency", "throughput")
DTYPES = ("fp32", "bf16", "fp16")
WEIGHTS = ("random", "pretrained")


@dataclass(frozen=True)
class Measure:
    """When a scenario stops measuring: the stopping rule is data, not loop constants.

    A scenario warms up for `warmup_s` (not counted), then measures until both
    `min_duration_s` and `min_samples` are reached, then stops as soon as the 95 % CI of
    the p50 latency is within +-`target_ci` (relative), or at `max_duration_s`.
    `target_ci = 0` disables the early stop (runs to `max_duration_s`).

    `keep_freed_memory` stops glibc's malloc in the workers from handing freed memory back
    to the kernel (as jemalloc/tcmalloc deployments do). Eager CPU models allocate and free
    megabytes a request; with glibc's defaults part of it comes back as fresh pages each
    time, and how much depends on the process's heap history: bert-base eager on CPU ran
    98-114 ms from one process to the next, tracking 700-10,000 page faults a request.
    Off by default (a plain process is what users run); on, the process state stops
    mattering, which is what an A/B comparison on CPU wants. See `page_faults_per_request`.
    """

    warmup_s: float = 1.0
    min_duration_s: float = 5.0
    max_duration_s: float | None = None  # None: 3 x min_duration_s
    min_samples: int = 100
    target_ci: float = 0.01
    trim_s: float = 1.0  # throughput: trimmed from each end of the window
    cell_timeout_s: float | None = None  # None: scenario default
    keep_freed_memory: bool = False

    def __post_init__(self) -> None:
        for name in ("warmup_s", "min_duration_s", "trim_s", "target_ci"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or not math.isfinite(value):
                raise UsageError(f"{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.min_samples, int) or isinstance(self.min_samples, bool) or self.min_samples < 1:
            raise UsageError(f"min_samples must be an integer >= 1, got {self.min_samples!r}")
        if self.max_duration_s is not None and (
            not isinstance(self.max_duration_s, (int, float)) or self.max_duration_s < self.min_duration_s
        ):
            raise UsageError(
                f"max_duration_s must be >= min_duration_s ({self.min_duration_s}), got {self.max_duration_s!r}"
            )
        if not isinstance(self.keep_freed_memory, bool):
            raise UsageError(f"keep_freed_memory must be true or false, got {self.keep_freed_memory!r}")
        if self.cell_timeout_s is not None and (
            not isinstance(self.cell_timeout_s, (int, float)) or self.cell_timeout_s <= 0
        ):
            raise UsageError(f"cell_timeout_s must be a number > 0, got {self.cell_timeout_s!r}")

    @property
    def max_s(self) -> float:
        return float(self.max_duration_s if self.max_duration_s is not None else 3 * self.min_duration_s)

    @property
    def timeout_s(self) -> float:
        """Upper bound on one measurement before the cell is declared hung."""
        if self.cell_timeout_s is not None:
            return float(self.cell_timeout_s)
        return self.warmup_s + self.max_s + 120.0


@dataclass(frozen=True)
class UserModel:
    """A user's own model: `factory()` returns `(nn.Module, tuple_of_example_tensors)`.

    The factory runs inside each worker process, so it must be importable there
    (a module-level function, not a lambda).
    """

    name: str
    factory: Callable[[], Any] = field(compare=False, hash=False)

    def __str__(self) -> str:
        return f"user:{self.name}"


_KEY_IF_SET = {"p99_bound_ms", "burstiness", "output_len"}  # in the key only when not None


@dataclass(frozen=True)
class Cell:
    """One measurement: a model on a target with a compiler, a scenario and a shape.

    All fields but `measure` form the cell key; two rows are comparable when keys match.
    """

    model: str | UserModel
    target: str = "cpu"
    compiler: str = "eager"
    dtype: str = "fp32"
    scenario: str = "latency"
    batch_size: int = 1
    seq_len: int | None = None
    image_size: int | None = None
    weights: str = "random"
    compiler_args: tuple[str, ...] = ()
    n_models: int = 1
    workers_per_model: int = 1
    threads_per_worker: int | None = None
    rate_qps: float | None = None
    # server: the p99 latency bound (ms) and the arrivals' gamma shape (None = 1, Poisson);
    # generate: output tokens per request. Left out of the key while None, so adding them
    # changed no existing cell_id.
    p99_bound_ms: float | None = None
    burstiness: float | None = None
    output_len: int | None = None
    measure: Measure = field(default_factory=Measure, compare=False)
    # Not part of the key: why `-t auto` (or a target's default compiler) chose as it did
    # (recorded in the row).
    target_notes: str = field(default="", compare=False)
    # Not part of the key: the accelerator cores each model copy gets, where a target plans
    # them (neuron trace-dp: the cores DataParallel splits a batch over; nxdi: tp_degree).
    # Planned, so a compile on a host without devices splits as the run will.
    cores_per_model: int | None = field(default=None, compare=False)

    @property
    def model_name(self) -> str:
        return str(self.model)

    def key(self) -> dict[str, Any]:
        """The comparable identity of this cell, as plain JSON-able data."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if not f.compare:  # measure, target_notes
                continue
            value = getattr(self, f.name)
            if value is None and f.name in _KEY_IF_SET:
                continue
            if f.name == "model":
                value = str(value)
            elif f.name == "compiler_args":
                value = " ".join(value)
            out[f.name] = value
        return out

    @property
    def cell_id(self) -> str:
        blob = json.dumps(self.key(), sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        shape = f"seq{self.seq_len}" if self.seq_len else (f"img{self.image_size}" if self.image_size else "")
        parts = [self.model_name, f"{self.target}/{self.compiler}", self.dtype, self.scenario, f"b{self.batch_size}", shape]
        if self.n_models > 1 or self.workers_per_model > 1:
            parts.append(f"{self.n_models}x{self.workers_per_model}")
        if self.output_len:
            parts.append(f"out{self.output_len}")
        if self.rate_qps:
            parts.append(f"{self.rate_qps:g}qps")
        elif self.p99_bound_ms and self.scenario == "server":
            parts.append(f"max-rate p99<={self.p99_bound_ms:g}ms")
        return " ".join(p for p in parts if p)

    def worker_group(self) -> tuple:
        """Cells sharing this tuple can reuse the same worker processes (one model build)."""
        return (self.model_name, self.weights, self.target, self.compiler, self.dtype, self.compiler_args)


@dataclass
class Plan:
    """An ordered list of cells with a name; cells sharing worker processes run together."""

    name: str
    cells: list[Cell]
    description: str = ""

    def ordered(self) -> list[Cell]:
        """Cells grouped by worker group (stable), so each model is built once per group."""
        order: dict[tuple, int] = {}
        for cell in self.cells:
            order.setdefault(cell.worker_group(), len(order))
        return sorted(self.cells, key=lambda c: order[c.worker_group()])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "cells": [dict(c.key(), cell_id=c.cell_id, measure=asdict(c.measure),
                           **({"cores_per_model": c.cores_per_model} if c.cores_per_model else {}),
                           **({"target_notes": c.target_notes} if c.target_notes else {}))
                      for c in self.cells],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "run.json") -> Plan:
        """Rebuild a plan written by `to_dict` (resume reads it back from run.json)."""
        cells = []
        try:
            for entry in data["cells"]:
                entry = dict(entry)
                stored_id = entry.pop("cell_id", None)
                measure = Measure(**entry.pop("measure", {}))
                if str(entry.get("model", "")).startswith("user:"):
                    raise UsageError(f"{source}: a user's model ({entry['model']}) cannot be resumed "
                                     "from the command line; rerun it through the Python API with resume=")
                entry["compiler_args"] = tuple(str(entry.get("compiler_args") or "").split())
                cell = Cell(**entry, measure=measure)
                if stored_id and cell.cell_id != stored_id:
                    raise UsageError(f"{source}: cell {stored_id} was planned by another trnbench version")
                cells.append(cell)
        except (KeyError, TypeError) as exc:
            raise UsageError(f"{source}: not a trnbench plan ({exc})") from None
        return cls(name=str(data.get("name", "resumed")), cells=cells, description=str(data.get("description", "")))

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_grid(
        cls,
        *,
        models: Sequence[str | UserModel],
        targets: Sequence[str] = ("cpu",),
        compilers: Sequence[str] | None = None,
        dtypes: Sequence[str] = ("fp32",),
        scenarios: Sequence[str] = ("latency",),
        batch_sizes: Sequence[int] = (1,),
        seq_lens: Sequence[int | None] = (None,),
        image_sizes: Sequence[int | None] = (None,),
        weights: str = "random",
        compiler_args: Sequence[str] = (),
        n_models: int | None = None,
        workers_per_model: int | None = None,
        threads_per_worker: int | None = None,
        rates: Sequence[float | None] = (None,),
        find_max_rate: bool = False,
        p99_bound_ms: float | None = None,
        burstiness: float | None = None,
        output_lens: Sequence[int | None] = (None,),
        measure: Measure | None = None,
        name: str = "adhoc",
        description: str = "",
    ) -> Plan:
        """Cross product of the given axes, validated against the model cards and targets.

        `compilers=None` means each target's default compiler (eager on cpu/cuda; trace on
        neuron, or TorchNeuron's native-compile on Trn2/Trn3, where PyTorch/XLA inference
        ends with Neuron 2.34); the target `auto` is the first available of neuron, cuda, cpu.
        """
        from bench import models as model_registry
        from bench import targets as target_registry

        measure = measure or Measure()
        _check_choice("weights", [weights], WEIGHTS, allow_path=True)
        _check_choice("dtype", dtypes, DTYPES)
        for axis, values in (("batch size", batch_sizes), ("n_models", [n_models]),
                             ("workers_per_model", [workers_per_model]),
                             ("threads_per_worker", [threads_per_worker])):
            for v in values:
                if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                    raise UsageError(f"{axis} must be a positive integer, got {v!r}")
        for v in list(seq_lens) + list(image_sizes):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise UsageError(f"sequence length / image size must be a positive integer, got {v!r}")
        from bench.scenarios import names as scenario_names

        _check_choice("scenario", scenarios, scenario_names())
        for r in rates:
            if r is not None and (not isinstance(r, (int, float)) or r <= 0):
                raise UsageError(f"rate must be a positive number, got {r!r}")
        # server: fixed rates and/or a max-rate search (rate None); other scenarios: no rate
        server_rates = [r for r in rates if r is not None] + ([None] if find_max_rate else [])
        if "server" in scenarios and not server_rates:
            raise UsageError("the server scenario needs --rate R (queries/s), or --find-max-rate with --p99-bound MS")
        if find_max_rate and p99_bound_ms is None:
            raise UsageError("--find-max-rate needs --p99-bound MS (the p99 latency the rate must keep)")
        for what, v in (("p99 bound (ms)", p99_bound_ms), ("burstiness", burstiness)):
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < math.inf):
                raise UsageError(f"{what} must be a positive number, got {v!r}")
        for v in output_lens:
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise UsageError(f"output length must be a positive integer, got {v!r}")
        from bench import scenarios as scenario_registry
        from bench.scenarios.generate import DEFAULT_OUTPUT_LEN

        cells: list[Cell] = []
        for model in models:
            card = None if isinstance(model, UserModel) else model_registry.card(model)
            for target_name in targets:
                notes = ""
                if target_name == "auto":
                    target_name, notes = target_registry.pick_auto()
                target = target_registry.get(target_name)
                chosen, why = (list(compilers), "") if compilers else target.default_compiler()
                notes = "; ".join(n for n in (notes, why) if n)
                for compiler in chosen:
                    try:
                        target.check_compiler(compiler)
                    except UsageError as exc:
                        raise UsageError(f"{exc} [{notes}]" if notes else str(exc)) from None
                    for dtype, scenario, batch, seq, img, rate, out_len in itertools.product(
                        dtypes, scenarios, batch_sizes, seq_lens, image_sizes, server_rates or [None], output_lens
                    ):
                        shape = card.resolve_shape(seq, img) if card else {"seq_len": seq, "image_size": img}
                        server, gen = scenario == "server", scenario == "generate"
                        cell = Cell(
                            model=model if isinstance(model, UserModel) else card.name,
                            target=target_name,
                            compiler=compiler,
                            dtype=dtype,
                            scenario=scenario,
                            batch_size=batch,
                            weights=weights,
                            compiler_args=tuple(compiler_args),
                            n_models=n_models or (1 if gen else 0),
                            workers_per_model=workers_per_model or (1 if gen else 0),
                            threads_per_worker=threads_per_worker,
                            rate_qps=rate if server else None,
                            p99_bound_ms=p99_bound_ms if server else None,
                            burstiness=burstiness if server and burstiness != 1 else None,
                            output_len=(out_len or DEFAULT_OUTPUT_LEN) if gen else None,
                            measure=measure,
                            target_notes=notes,
                            **shape,
                        )
                        cell = target.resolve(cell)
                        scenario_registry.check(cell)
                        cells.append(cell)
        if not cells:
            raise UsageError("the plan is empty: give at least one model")
        return cls(name=name, cells=_dedupe(cells), description=description)

    @classmethod
    def from_suite(cls, name_or_path: str, **overrides: Any) -> Plan:
        """Load `suites/<name>.toml` (or a path). `overrides` replace suite axes/measure keys."""
        path = find_suite(name_or_path)
        data = read_toml(path)
        return cls.from_suite_data(data, name=path.stem, source=str(path), **overrides)

    @classmethod
    def from_suite_data(cls, data: dict[str, Any], *, name: str, source: str = "<suite>", **overrides: Any) -> Plan:
        _check_keys(data, {"description", "measure", "sweep"}, source, "suite")
        if not isinstance(data.get("measure", {}), dict):
            raise UsageError(f"{source}: [measure] must be a table")
        if not isinstance(data.get("description", ""), str):
            raise UsageError(f"{source}: description must be a string")
        measure_data = dict(data.get("measure", {}))
        _check_keys(measure_data, {f.name for f in fields(Measure)}, source, "[measure]")
        measure_data.update({k: v for k, v in overrides.pop("measure", {}).items() if v is not None})
        measure = Measure(**measure_data)
        sweeps = data.get("sweep")
        if not isinstance(sweeps, list) or not sweeps or not all(isinstance(s, dict) for s in sweeps):
            raise UsageError(f"{source}: a suite needs at least one [[sweep]] table")
        cells: list[Cell] = []
        for i, sweep in enumerate(sweeps):
            where = f"{source}: [[sweep]] #{i + 1}"
            _check_keys(sweep, set(_SWEEP_KEYS), source, f"[[sweep]] #{i + 1}")
            kwargs: dict[str, Any] = {}
            for key, (arg, kind) in _SWEEP_KEYS.items():
                if key in sweep:
                    kwargs[arg] = _typed(sweep[key], kind, f"{where}: {key}")
            if "models" not in kwargs:
                raise UsageError(f"{where}: 'models' is required")
            kwargs.update({k: v for k, v in overrides.items() if v is not None})
            plan = cls.from_grid(measure=measure, **kwargs)
            cells.extend(plan.cells)
        return cls(name=name, cells=_dedupe(cells), description=str(data.get("description", "")))


# suite key -> (from_grid argument, expected type)
_SWEEP_KEYS: dict[str, tuple[str, str]] = {
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
}


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
    }[kind](value)
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


def _check_choice(what: str, values: Iterable[str], allowed: Sequence[str], allow_path: bool = False) -> None:
    for v in values:
        if v in allowed or (allow_path and isinstance(v, str) and os.path.isdir(v)):
            continue
        extra = " or a local model directory" if allow_path else ""
        raise UsageError(f"unknown {what} {v!r} (choose from {', '.join(allowed)}{extra})")


def _dedupe(cells: list[Cell]) -> list[Cell]:
    seen: set[str] = set()
    out = []
    for c in cells:
        if c.cell_id not in seen:
            seen.add(c.cell_id)
            out.append(c)
    return out


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

