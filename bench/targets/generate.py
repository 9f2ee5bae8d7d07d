"""The `generate` verb on a model the worker holds (cpu, cuda: compiler eager): one request is
transformers' greedy `generate` with exactly `output_len` new tokens, every generated step
timestamped by a streamer after the target's sync (bench.scenarios.generate applies the load
and says what the row means). Neuron's is NxD Inference's (bench.targets.neuron.generate)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets.requests import PrepareReport, Requests, WorkerContext


@cache
def _timer_class():
    """A transformers streamer that timestamps every generated step (defined on first use)."""
    from transformers.generation.streamers import BaseStreamer

    class TokenTimer(BaseStreamer):
        def __init__(self, on_token: Callable[[], None], sync: Callable[[], None]):
            self.on_token = on_token
            self.sync = sync
            self.prompt_seen = False

        def put(self, value) -> None:
            if not self.prompt_seen:  # generate() first hands over the prompt
                self.prompt_seen = True
                return
            self.sync()
            self.on_token()

        def end(self) -> None:
            pass

    return TokenTimer


class HfGenerator:
    """One request = transformers' greedy `generate` with exactly `output_len` new tokens."""

    def __init__(self, model, input_ids, attention_mask, output_len: int, sync: Callable[[], None]):
        self.model = model
        self.input_ids = input_ids
        self.sync = sync
        self.output_len = output_len
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = getattr(model.config, "eos_token_id", None)
        pad = model.generation_config.pad_token_id
        if pad is None:
            pad = (eos[0] if isinstance(eos, (list, tuple)) and eos else eos) or 0
        self.kwargs = {"attention_mask": attention_mask, "max_new_tokens": output_len,
                       "min_new_tokens": output_len, "do_sample": False, "use_cache": True,
                       "num_beams": 1, "pad_token_id": pad}

    def __call__(self, on_token: Callable[[], None]) -> int:
        timer = _timer_class()(on_token, self.sync)
        out = self.model.generate(self.input_ids, streamer=timer, **self.kwargs)
        return int(out.shape[-1] - self.input_ids.shape[-1])


def prepare_hf(ctx: WorkerContext, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
    """cpu / cuda: the usual preparation, then a generator over the HF model inside the wrapper."""
    report = ctx.prepare(cell, leader, cache_root)  # build, place, accuracy of the forward, first call
    prepared = ctx.prepared
    model = getattr(prepared.fn, "model", None)
    if model is None or not hasattr(model, "generate"):
        raise RuntimeError(f"generate needs the transformers model behind compiler {cell.compiler}; "
                           f"got {type(prepared.fn).__name__}")
    input_ids, attention_mask = prepared.inputs[:2]
    generator = HfGenerator(model, input_ids, attention_mask, cell.output_len, ctx.target.sync)
    # the first (cold) call of a generate cell is a whole request: it also sizes the cell timeout
    with ctx.target.thread_context():
        t0 = time.perf_counter_ns()
        generator(lambda: None)
        report.first_call_ms = (time.perf_counter_ns() - t0) / 1e6
    ctx.prepared = replace(prepared, fn=generator)
    return report


class HfGenerateRequests(Requests):
    """LLM generation through transformers' `generate` (compiler eager)."""

    verb = "generate"

    def check(self, cell: Cell, profile: str) -> None:
        if cell.compiler != "eager":
            raise UsageError(f"generate on {cell.target} runs transformers' generate() with a KV cache: "
                             f"use compiler eager, not {cell.compiler}")

    def prepare(self, ctx: WorkerContext, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
        return prepare_hf(ctx, cell, leader, cache_root)

    def profile_pass(self, ctx: WorkerContext, cell: Cell, capture) -> int:
        return generate_once(ctx, capture)


def generate_once(ctx: WorkerContext, capture) -> int:
    """One whole generation (prefill and every decode step) inside `capture`."""
    with ctx.target.thread_context(), capture.request():
        ctx.prepared.fn(lambda: None)
    return 1


GENERATE = HfGenerateRequests()
