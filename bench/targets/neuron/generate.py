"""The `generate` verb on Neuron: NxD Inference (compiler nxdi) builds or loads the model, its
`HuggingFaceGenerationAdapter` decodes, and a forward hook timestamps every generated token
(bench.targets.neuron.nxdi). NxD Inference is in maintenance on Inf2/Trn1 and unsupported on
Trn2/Trn3 from Neuron 2.34, where LLMs are served by vLLM Neuron (the endpoint target)."""

from __future__ import annotations

import time
from pathlib import Path

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets.requests import PrepareReport, Requests, WorkerContext

NXDI = "nxdi"


def prepare_nxdi(ctx: WorkerContext, cell: Cell, cache_root: Path) -> PrepareReport:
    """neuron (compiler nxdi): build or load the NxD Inference model, then one cold request."""
    from bench import models
    from bench.targets.base import Prepared
    from bench.targets.neuron import nxdi

    ctx.target.configure_cell(cell)
    card = models.card(str(cell.model))
    ctx.prepared = None
    t0 = time.perf_counter()
    built = nxdi.build(card, cell, lambda: ctx.module(cell, "fp32").model, cache_root)
    generator = built["generator"]
    t1 = time.perf_counter_ns()
    generator(lambda: None)
    first_call_ms = (time.perf_counter_ns() - t1) / 1e6
    ctx.prepared = Prepared(fn=generator, inputs=built["inputs"], compile_s=built["compile_s"],
                            load_s=built["load_s"], cache_hit=built["cache_hit"], artifact=built["artifact"])
    build_s = time.perf_counter() - t0 - (built["compile_s"] or 0.0) - built["load_s"] - first_call_ms / 1e3
    return PrepareReport(build_s=build_s, compile_s=built["compile_s"], load_s=built["load_s"],
                         first_call_ms=first_call_ms, cache_hit=built["cache_hit"], artifact=built["artifact"],
                         device=ctx.describe())


class NxdiGenerateRequests(Requests):
    """LLM generation through NxD Inference (compiler nxdi)."""

    verb = "generate"

    def check(self, cell: Cell, profile: str) -> None:
        if cell.compiler != NXDI:
            raise UsageError("generate on neuron runs through NxD Inference: use compiler nxdi (-c nxdi)")

    def prepare(self, ctx: WorkerContext, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
        return prepare_nxdi(ctx, cell, cache_root)

    def profile_pass(self, ctx: WorkerContext, cell: Cell, capture) -> int:
        from bench.targets.generate import generate_once

        return generate_once(ctx, capture)


NXDI_GENERATE = NxdiGenerateRequests()
