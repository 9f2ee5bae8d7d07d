"""A Plan is an ordered list of cells; `Plan.from_grid` and `Plan.from_suite` build one.

Planning resolves every cell against the model cards (default shapes, limits), its target
(defaults that depend on the host: copies, threads, cores) and its scenario (plan-time
checks), so this module sits above targets, scenarios and models; the cells themselves are
plain data (bench.plan.cell). No torch is imported: planning a large sweep is instant.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.errors import UsageError
from bench.plan.cell import DTYPES, WEIGHTS, Cell, Measure, TargetOptions, UserModel
from bench.plan.suite import read_suite, sweeps
from bench.results.schema import upgrade_plan_entry


@dataclass
class Plan:
    """An ordered list of cells with a name; cells sharing worker processes run together.

    `control` (`run --control MODEL`): an unchanged model measured beside every other cell,
    in windows interleaved with the cell's own (bench.execute.local), so that separate runs
    compare each cell against the control's windows of the same minutes (`control_twin`).
    """

    name: str
    cells: list[Cell]
    description: str = ""
    control: str | UserModel | None = None

    def ordered(self) -> list[Cell]:
        """Cells grouped by worker group (stable), so each model is built once per group."""
        order: dict[tuple, int] = {}
        for cell in self.cells:
            order.setdefault(cell.worker_group(), len(order))
        return sorted(self.cells, key=lambda c: order[c.worker_group()])

    def with_control(self, model: str | UserModel | None) -> Plan:
        """This plan with `model` measured beside every cell of another model; the cells a
        control cannot pair with (measured once, or over HTTP) are refused."""
        if model is None:
            return self
        plan = Plan(self.name, self.cells, self.description, control=model)
        paired = [c for c in self.cells if c.model_name != str(model)]
        if not paired:
            raise UsageError(f"--control {model}: every cell is of that model; nothing to measure beside it")
        for cell in paired:
            plan.control_twin(cell)
        return plan

    def control_twin(self, cell: Cell) -> Cell:
        """The control's cell measured beside `cell`: the same target, compiler, dtype,
        scenario, batch size and threads, in the control card's own shape."""
        from bench import scenarios as scenario_registry
        from bench.scenarios import requests_of

        if requests_of(cell).long or not scenario_registry.of(cell).pools_rounds:
            raise UsageError(f"--control pairs rounds, and {cell.label} is measured once (only latency and "
                             "throughput cells on a local target pool rounds)")
        twin = Plan.from_grid(models=[self.control], targets=[cell.target], compilers=[cell.compiler],
                              dtypes=[cell.dtype], scenarios=[cell.scenario], batch_sizes=[cell.batch_size],
                              weights=cell.weights, n_models=cell.n_models or None,
                              workers_per_model=cell.workers_per_model or None,
                              threads_per_worker=cell.threads_per_worker, measure=cell.measure).cells[0]
        return twin

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            **({"control": str(self.control)} if self.control is not None else {}),
            "cells": [dict(c.key(), cell_id=c.cell_id, measure=asdict(c.measure),
                           **({"cores_per_model": c.cores_per_model} if c.cores_per_model else {}),
                           **({"target_notes": c.target_notes} if c.target_notes else {}),
                           **({"options": c.options.to_dict()} if c.options is not None and c.options.to_dict() else {}))
                      for c in self.cells],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "run.json") -> Plan:
        """Rebuild a plan written by `to_dict` (resume reads it back from run.json)."""
        from bench import targets as target_registry

        cells = []
        try:
            for entry in data["cells"]:
                entry = dict(entry)
                stored_id = entry.pop("cell_id", None)
                measure = Measure(**entry.pop("measure", {}))
                if str(entry.get("model", "")).startswith("user:"):
                    raise UsageError(f"{source}: a user's model ({entry['model']}) cannot be resumed "
                                     "from the command line; rerun it through the Python API with resume=")
                entry = upgrade_plan_entry(entry)  # a run.json from an older schema
                stored = entry.pop("options", None)
                options = target_registry.get(str(entry.get("target"))).options_from_dict(stored) if stored else None
                unknown = set(entry) - set(Cell.key_columns()) - {"target_notes", "cores_per_model"}
                if unknown:
                    raise TypeError(f"unknown cell field {sorted(unknown)[0]!r}")
                cell = Cell.from_key(entry, measure=measure, target_notes=str(entry.get("target_notes") or ""),
                                     cores_per_model=entry.get("cores_per_model"), options=options)
                if stored_id and cell.cell_id != stored_id:
                    raise UsageError(f"{source}: cell {stored_id} was planned by another trnbench version")
                cells.append(cell)
        except (KeyError, TypeError) as exc:
            raise UsageError(f"{source}: not a trnbench plan ({exc})") from None
        plan = cls(name=str(data.get("name", "resumed")), cells=cells, description=str(data.get("description", "")))
        control = data.get("control")
        if isinstance(control, str) and control.startswith("user:"):
            raise UsageError(f"{source}: a user's control model ({control}) cannot be resumed from the command "
                             "line; rerun it through the Python API with resume=")
        return plan.with_control(control) if control else plan

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
        grad_accums: Sequence[int | None] = (None,),
        optimizers: Sequence[str | None] = (None,),
        precisions: Sequence[str | None] = (None,),
        dps: Sequence[int | None] = (None,),
        measure: Measure | None = None,
        name: str = "adhoc",
        description: str = "",
        options: TargetOptions | None = None,
        concurrencies: Sequence[int | None] = (None,),
    ) -> Plan:
        """Cross product of the given axes, validated against the model cards and targets.

        `compilers=None` means each target's default compiler (eager on cpu/cuda; trace on
        neuron, or TorchNeuron's native-compile on Trn2/Trn3, where PyTorch/XLA inference
        ends with Neuron 2.34); the target `auto` is the first available of neuron, cuda, cpu.
        A target that serves a model by name (`needs_card` False: the endpoint, a server over
        HTTP described by `options`) takes the model's name as it is: there is no card;
        `concurrencies` are its throughput cells' requests in flight (an axis, like `rates`).
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
        from bench import scenarios as scenario_registry

        for name in scenarios:
            if not scenario_registry.is_known(name):
                raise UsageError(f"unknown scenario {name!r} (choose from {', '.join(scenario_registry.names())}, "
                                 "or package.module:attr)")
        kinds = {name: scenario_registry.get(name) for name in scenarios}
        for r in rates:
            if r is not None and (not isinstance(r, (int, float)) or r <= 0):
                raise UsageError(f"rate must be a positive number, got {r!r}")
        # a scenario with a rate (server): fixed rates and/or a max-rate search (rate None)
        server_rates = [r for r in rates if r is not None] + ([None] if find_max_rate else [])
        if any("rate_qps" in k.uses for k in kinds.values()) and not server_rates:
            bounds = sorted({_search_bound(t, k) for t in set(targets) for k in kinds.values() if "rate_qps" in k.uses})
            raise UsageError(f"the server scenario needs --rate R (queries/s), or --find-max-rate with "
                             f"{' or '.join(bounds)}")
        for what, v in (("p99 bound (ms)", p99_bound_ms), ("burstiness", burstiness)):
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < math.inf):
                raise UsageError(f"{what} must be a positive number, got {v!r}")
        for v in output_lens:
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise UsageError(f"output length must be a positive integer, got {v!r}")
        for axis, values in (("concurrency", concurrencies), ("--grad-accum", grad_accums), ("--dp", dps)):
            for v in values:
                if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                    raise UsageError(f"{axis} must be a positive integer, got {v!r}")
        cells: list[Cell] = []
        for model in models:
            for target_name in targets:
                notes = ""
                if target_name == "auto":
                    target_name, notes = target_registry.pick_auto()
                target = target_registry.get(target_name)
                named = not target.needs_card  # the name the system under test serves, not a card
                card = None if isinstance(model, UserModel) or named else model_registry.card(model)
                chosen, why = (list(compilers), "") if compilers else target.default_compiler()
                notes = "; ".join(n for n in (notes, why) if n)
                for compiler in chosen:
                    try:
                        target.check_compiler(compiler)
                    except UsageError as exc:
                        raise UsageError(f"{exc} [{notes}]" if notes else str(exc)) from None
                    for (dtype, scenario, batch, seq, img, rate, out_len, conc, accum, optimizer, precision,
                         dp) in itertools.product(
                        dtypes, scenarios, batch_sizes, seq_lens, image_sizes, server_rates or [None], output_lens,
                        concurrencies, grad_accums, optimizers, precisions, dps,
                    ):
                        shape = card.resolve_shape(seq, img) if card else {"seq_len": seq, "image_size": img}
                        kind = kinds[scenario]
                        verb = target.requests(target.verb_for(kind))  # a verb it lacks: one line, from it
                        uses = set(kind.uses) | set(verb.uses)
                        fields = {"rate_qps": rate, "p99_bound_ms": p99_bound_ms, "burstiness": burstiness,
                                  "output_len": out_len, "grad_accum": accum, "optimizer": optimizer,
                                  "precision": precision, "dp": dp}
                        cell = Cell(
                            **{k: (v if k in uses else None) for k, v in fields.items()},
                            model=model if isinstance(model, UserModel) else (str(model) if named else card.name),
                            target=target_name,
                            compiler=compiler,
                            dtype=dtype,
                            scenario=scenario,
                            batch_size=batch,
                            weights=weights,
                            compiler_args=tuple(compiler_args),
                            n_models=n_models or 0,  # 0: the scenario's or the target's default
                            workers_per_model=conc or workers_per_model or 0,
                            threads_per_worker=threads_per_worker,
                            measure=measure,
                            target_notes=notes,
                            options=options if target.options_type and isinstance(options, target.options_type) else None,
                            **shape,
                        )
                        # the scenario fixes its shape, the verb its own, the target fills the rest
                        cell = target.resolve(verb.plan(kind.plan(cell), kind.profile))
                        kind.check(cell)
                        cells.append(cell)
        if not cells:
            raise UsageError("the plan is empty: give at least one model")
        return cls(name=name, cells=_dedupe(cells), description=description)

    @classmethod
    def from_suite(cls, name_or_path: str, **overrides: Any) -> Plan:
        """Load `suites/<name>.toml` (or a path). `overrides` replace suite axes/measure keys."""
        name, data, source = read_suite(name_or_path)
        return cls.from_suite_data(data, name=name, source=source, **overrides)

    @classmethod
    def from_suite_data(cls, data: dict[str, Any], *, name: str, source: str = "<suite>", **overrides: Any) -> Plan:
        measure, axes, description = sweeps(data, source, overrides)
        cells: list[Cell] = []
        for kwargs in axes:
            endpoint = kwargs.pop("endpoint", None)
            if endpoint is not None:  # the endpoint flags, from the sweep's [endpoint] table
                from bench.targets.endpoint import plan_axes

                kwargs.update(plan_axes(kwargs.get("targets") or [], **endpoint))
            cells.extend(cls.from_grid(measure=measure, **kwargs).cells)
        return cls(name=name, cells=_dedupe(cells), description=description)



def _search_bound(target: str, kind) -> str:
    """The flag that bounds a max-rate search on `target`'s verb under `kind` ('--p99-bound MS')."""
    from bench import targets as target_registry

    if target == "auto":
        target = target_registry.pick_auto()[0]
    t = target_registry.get(target)
    return t.requests(t.verb_for(kind)).search_bound


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
