"""A Cell is one measurement: its key (what makes two rows comparable) and how it is measured.

Plain data: no torch, no registries. Every other layer imports it; it imports nothing of
trnbench but errors.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from bench.errors import UsageError

DTYPES = ("fp32", "bf16", "fp16")
WEIGHTS = ("random", "pretrained")


@dataclass(frozen=True)
class Measure:
    """When a scenario stops measuring: the stopping rule is data, not loop constants.

    A scenario warms up for `warmup_s` (not counted), then measures until both
    `min_duration_s` and `min_samples` are reached, then stops as soon as the 95 % CI of
    the p50 latency is within +-`target_ci` (relative), or at `max_duration_s`.
    `target_ci = 0` disables the early stop (runs to `max_duration_s`).

    With `rounds` > 1 (latency and throughput cells; bench.execute.rounds) the minimums are
    the cell's totals, split evenly over its rounds, each round stopping at its share; after
    `rounds` rounds a cell gets more, up to `max_rounds`, while its interval over the rounds
    is wider than +-`target_ci`, the widest first while the run's `round_budget_s` lasts. The defaults (3 s and 18 requests a cell, in 3 to 6 rounds)
    follow from when the intervals are valid, not from a round number: a round's median has
    a bounded 95 % order-statistic interval from 6 requests (P(all 6 on one side of it) =
    2/64 < 5 %), and the t interval over rounds needs 3 rounds: 3 x 6 = 18. A round warms
    up again for `warmup_s` when anything ran since its previous round (in `ab`, only
    briefly when just the other side's processes ran: its windows are 50 ms), and not at
    all when nothing did.

    `keep_freed_memory` stops glibc's malloc in the workers from handing freed memory back
    to the kernel (as jemalloc/tcmalloc deployments do). Eager CPU models allocate and free
    megabytes a request; with glibc's defaults part of it comes back as fresh pages each
    time, and how much depends on the process's heap history: bert-base eager on CPU ran
    98-114 ms from one process to the next, tracking 700-10,000 page faults a request.
    Off by default (a plain process is what users run); on, the process state stops
    mattering, which is what an A/B comparison on CPU wants. See `page_faults_per_request`.
    """

    warmup_s: float = 0.5
    min_duration_s: float = 3.0
    max_duration_s: float | None = None  # None: 3 x min_duration_s
    min_samples: int = 18
    target_ci: float = 0.01
    trim_s: float = 1.0  # throughput: trimmed from each end of the window
    cell_timeout_s: float | None = None  # None: scenario default
    keep_freed_memory: bool = False
    # Rounds (bench.execute.rounds): the cell is measured in this many windows spread over the
    # run, and its intervals include the variance between them.
    rounds: int = 3
    max_rounds: int | None = None  # None: 2 x rounds (more rounds while the interval is wide)
    fresh_process_per_round: bool = False
    busy_retries: int = 2  # a round on a busy host is measured again at most this often
    # The measuring time a run spends, over all its cells, on rounds beyond their planned ones
    # (the widest intervals first; None: no limit but each cell's max_rounds).
    round_budget_s: float | None = None
    # After a cell's measurement, one untimed pass under its target's profiler (files in the
    # run directory's profiles/<cell_id>/; bench.targets.profiling). Nothing measured comes from it.
    profile: bool = False

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
        for name in ("rounds", "busy_retries", "max_rounds"):
            value = getattr(self, name)
            if name == "max_rounds" and value is None:
                continue
            low = {"rounds": 1, "busy_retries": 0, "max_rounds": self.rounds}[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UsageError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.fresh_process_per_round, bool):
            raise UsageError(f"fresh_process_per_round must be true or false, got {self.fresh_process_per_round!r}")
        if not isinstance(self.profile, bool):
            raise UsageError(f"profile must be true or false, got {self.profile!r}")
        if not isinstance(self.keep_freed_memory, bool):
            raise UsageError(f"keep_freed_memory must be true or false, got {self.keep_freed_memory!r}")
        if self.round_budget_s is not None and (not isinstance(self.round_budget_s, (int, float))
                                                or isinstance(self.round_budget_s, bool) or self.round_budget_s < 0
                                                or not math.isfinite(self.round_budget_s)):
            raise UsageError(f"round_budget_s must be a number >= 0, got {self.round_budget_s!r}")
        if self.cell_timeout_s is not None and (
            not isinstance(self.cell_timeout_s, (int, float)) or self.cell_timeout_s <= 0
        ):
            raise UsageError(f"cell_timeout_s must be a number > 0, got {self.cell_timeout_s!r}")

    @property
    def most_rounds(self) -> int:
        return self.max_rounds if self.max_rounds is not None else (2 * self.rounds if self.rounds > 1 else 1)

    def per_round(self, rounds: int, warm: str = "cold") -> Measure:
        """One round's share of the minimums: it stops as soon as it has them (the cell's
        interval is over its rounds; a tight interval inside one window would buy nothing).
        `warm`: "cold" (the first round, or its process ran other cells since: `warmup_s`),
        "rewarm" (its process did nothing since this cell's previous round, other processes
        ran: a tenth of the round's share, at most `warmup_s`, to re-prime the CPU's caches)
        or "warm" (nothing ran since this cell's previous round: no warm-up)."""
        if rounds <= 1:
            return self
        duration = self.min_duration_s / rounds
        warmup = {"cold": self.warmup_s, "rewarm": min(self.warmup_s, duration / 10), "warm": 0.0}[warm]
        return replace(self, min_duration_s=duration, max_duration_s=duration,
                       min_samples=max(1, math.ceil(self.min_samples / rounds)), target_ci=0.0,
                       trim_s=min(self.trim_s, duration / 4), warmup_s=warmup)

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


# in the key only when not None (so adding them changed no existing cell_id)
_KEY_IF_SET = {"p99_bound_ms", "burstiness", "output_len", "grad_accum", "optimizer", "precision", "dp"}
# Key columns a target's options fill (the endpoint's SLOs and prompt dataset): named here so
# that every row has them as columns, set by the options' own `key()`, never stored twice.
OPTION_KEY_COLUMNS = ("slo", "dataset")


class TargetOptions:
    """What only one target reads (an endpoint's URL, API key variable, SLOs, dataset, launch
    command), as one typed value in the cell (`Cell.options`; bench.targets.endpoint.Endpoint
    is one). `key()`: the part of it that belongs to the cell key (columns of
    OPTION_KEY_COLUMNS, None left out); `to_dict()`: what run.json keeps to resume it."""

    def key(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class KeyOnly(TargetOptions):
    """Options read back from a row's key (a comparison, a label): their key part alone."""

    values: tuple[tuple[str, Any], ...] = ()

    def key(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class Cell:
    """One measurement: a model on a target with a compiler, a scenario and a shape.

    The fields before `measure` form the cell key (in this order: they are the results'
    key columns, bench.results.schema.KEY_COLUMNS); two rows are comparable when keys match.
    """

    model: str | UserModel
    weights: str = "random"
    target: str = "cpu"
    compiler: str = "eager"
    dtype: str = "fp32"
    compiler_args: tuple[str, ...] = ()
    scenario: str = "latency"
    batch_size: int = 1
    seq_len: int | None = None
    image_size: int | None = None
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
    # train: micro-batches per optimizer step, the optimizer, the training precision (fp32,
    # amp-bf16: bf16 autocast over fp32 master weights, bf16: pure bf16, auto-cast: the
    # Neuron compiler's), and data-parallel ranks (bench.targets.train)
    grad_accum: int | None = None
    optimizer: str | None = None
    precision: str | None = None
    dp: int | None = None
    measure: Measure = field(default_factory=Measure, compare=False)
    # Not part of the key: why `-t auto` (or a target's default compiler) chose as it did
    # (recorded in the row).
    target_notes: str = field(default="", compare=False)
    # Not part of the key: the accelerator cores each model copy gets, where a target plans
    # them (neuron trace-dp: the cores DataParallel splits a batch over; nxdi: tp_degree).
    # Planned, so a compile on a host without devices splits as the run will.
    cores_per_model: int | None = field(default=None, compare=False)
    # A target's own options (bench.targets.endpoint.Endpoint: the server and how to drive it);
    # their `key()` adds the columns of OPTION_KEY_COLUMNS to the cell's key.
    options: TargetOptions | None = field(default=None, compare=False)

    @classmethod
    def key_columns(cls) -> list[str]:
        """The key's column names, in order."""
        return [f.name for f in fields(cls) if f.compare] + list(OPTION_KEY_COLUMNS)

    @classmethod
    def from_key(cls, key: dict[str, Any], **extra: Any) -> Cell:
        """The cell a key (or a result row's key columns) stands for; `extra`: measure, options etc."""
        own = [f.name for f in fields(cls) if f.compare]
        values = {c: norm(key.get(c)) for c in own if c in key}
        values["compiler_args"] = tuple(str(values.get("compiler_args") or "").split())
        opts = tuple((c, norm(key[c])) for c in OPTION_KEY_COLUMNS if norm(key.get(c)) is not None)
        if opts and "options" not in extra:
            extra = dict(extra, options=KeyOnly(opts))
        return cls(**{k: v for k, v in values.items() if v is not None or k in _KEY_IF_SET}, **extra)

    @property
    def model_name(self) -> str:
        return str(self.model)

    def key(self) -> dict[str, Any]:
        """The comparable identity of this cell, as plain JSON-able data."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if not f.compare:  # measure, target_notes, options
                continue
            value = getattr(self, f.name)
            if value is None and f.name in _KEY_IF_SET:
                continue
            if f.name == "model":
                value = str(value)
            elif f.name == "compiler_args":
                value = " ".join(value)
            out[f.name] = value
        if self.options is not None:
            found = self.options.key()
            out.update({c: found[c] for c in OPTION_KEY_COLUMNS if found.get(c) is not None})
        return out

    @property
    def cell_id(self) -> str:
        blob = json.dumps(self.key(), sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return cell_label(self.key())

    def worker_group(self) -> tuple:
        """Cells sharing this tuple can reuse the same worker processes (one model build)."""
        return (self.model_name, self.weights, self.target, self.compiler, self.dtype, self.compiler_args)


def cell_label(key: dict[str, Any]) -> str:
    """The one label of a cell, from its key (a Cell's or a result row's):
    'tiny-bert cpu/jit fp32 latency b4 seq32 [--flag] 2x2 out128 100qps' (the parts present)."""
    k = {name: norm(value) for name, value in key.items()}
    parts: list[Any] = [k.get("model")]
    if k.get("target") is not None or k.get("compiler") is not None:
        parts.append("/".join(str(p) for p in (k.get("target"), k.get("compiler")) if p is not None))
    parts += [k.get("dtype"), k.get("scenario")]
    if k.get("batch_size") is not None:
        parts.append(f"b{k['batch_size']}")
    parts.append(shape_label(k))
    if k.get("compiler_args"):
        parts.append(f"[{k['compiler_args']}]")
    n, w = k.get("n_models"), k.get("workers_per_model")
    if (n or 1) > 1 or (w or 1) > 1:
        parts.append(f"{n}x{w}")
    if k.get("output_len"):
        parts.append(f"out{k['output_len']}")
    if k.get("precision"):
        parts.append(k["precision"] if k["precision"] != k.get("dtype") else "")
        parts.append(k.get("optimizer"))
        if (k.get("grad_accum") or 1) > 1:
            parts.append(f"accum{k['grad_accum']}")
        if (k.get("dp") or 1) > 1:
            parts.append(f"dp{k['dp']}")
    if k.get("rate_qps"):
        parts.append(f"{float(k['rate_qps']):g}qps")
    elif k.get("p99_bound_ms") and k.get("scenario") == "server":
        parts.append(f"max-rate p99<={float(k['p99_bound_ms']):g}ms")
    elif k.get("slo") and k.get("scenario") == "server":
        parts.append("max-rate")
    if k.get("slo"):
        parts.append(f"slo[{k['slo']}]")
    if k.get("dataset"):
        parts.append(f"data[{k['dataset']}]")
    return " ".join(str(p) for p in parts if p not in (None, ""))


def shape_label(row: dict[str, Any]) -> str:
    if norm(row.get("seq_len")) is not None:
        return f"seq{int(row['seq_len'])}"
    if norm(row.get("image_size")) is not None:
        return f"{int(row['image_size'])}px"
    return ""


def norm(v: Any) -> Any:
    """A results value as a key value: NaN -> None, 2.0 -> 2 (rows read back from JSON/pandas)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v
