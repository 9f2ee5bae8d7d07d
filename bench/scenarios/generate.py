"""`generate` (decoder LLMs): TTFT, TPOT, ITL, end-to-end latency, output tokens/s, requests/s.

Definitions (vLLM's `benchmark_serving.py`), per request:
- TTFT: request start -> first output token.
- e2e latency: request start -> last output token.
- TPOT: (e2e - TTFT) / (output tokens - 1), the mean gap after the first token.
- ITL: every gap between consecutive output tokens; all requests' gaps are pooled.
Over the measured requests: output tokens/s = all output tokens / measured span, requests/s =
requests / measured span, the span running from the first request's start to the last
token (several model copies run side by side inside one span).

A request is one `generate` call on `batch_size` prompts of `seq_len` tokens, with greedy
decoding, a KV cache and `min_new_tokens = max_new_tokens = output_len`, so every sequence
produces exactly `output_len` tokens (a request that produced another count is an error,
not a sample). The sequences of a batch decode in lockstep, so they share one timestamp
per step: a batch of B counts as B requests in requests/s and tokens/s, and once in the
TTFT / TPOT / ITL distributions (its B values are identical). Each request gets a fresh
token timer (no accumulation across calls) and, on Neuron, a fresh KV cache.

How tokens are timed
- cpu / cuda (compiler `eager`): transformers' `model.generate(..., streamer=timer)`; the
  timer is a `BaseStreamer` whose `put()` takes `perf_counter_ns` after the target's sync
  for every generated step (the first `put()` carries the prompt and is skipped).
  transformers hands the streamer `tokens.cpu()`, which already waits for the GPU.
- neuron (compiler `nxdi`): NxD Inference's `HuggingFaceGenerationAdapter` runs its own
  decoding loop without a streamer, so the timer is a forward hook on the adapter: one
  timestamp per forward, i.e. per generated token (see `bench.targets.neuron.nxdi`).

`GenerateScenario.prepare` (bench.scenarios.base) goes beyond the worker's plain
preparation: for cpu/cuda it runs it, then swaps the prepared callable for a generator over
the HF model inside the TensorsOnly wrapper and times one cold request as `first_call_ms`;
for nxdi it builds the NxD model instead. `measure` runs the request loop. Like the closed loop, the loop stops only when the leader's stopping rule
says so: `min_samples` requests and `min_duration_s`, then the CI or `max_duration_s`. `check` validates a cell at plan
time. Nothing here imports torch at module level: `summarise` runs in the orchestrator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.plan.cell import Cell, UserModel
from bench.scenarios.base import Column, Scenario, WorkerContext
from bench.stats.summary import distribution

DEFAULT_OUTPUT_LEN = 128
NXDI = "nxdi"


# -- metrics (pure) -------------------------------------------------------------------------


def request_metrics(start_ns: int, token_ns: Sequence[int]) -> dict[str, Any]:
    """One request's TTFT, e2e, TPOT (ns) and ITL gaps from its start and token timestamps."""
    t = np.asarray(token_ns, dtype=np.int64)
    if t.size == 0:
        raise ValueError("a request with no output token has no TTFT")
    ttft = int(t[0] - start_ns)
    e2e = int(t[-1] - start_ns)
    tpot = (e2e - ttft) / (t.size - 1) if t.size > 1 else float("nan")
    return {"ttft_ns": ttft, "e2e_ns": e2e, "tpot_ns": tpot, "itl_ns": np.diff(t), "output_tokens": int(t.size)}


def generate_metrics(start_ns: Sequence[int], token_ns: Sequence[Sequence[int]],
                     batch_size: int = 1) -> dict[str, float]:
    """Row columns for a set of requests: ttft/tpot/itl/e2e distributions and rates."""
    if len(start_ns) != len(token_ns):
        raise ValueError("one token list per request start is needed")
    per = [request_metrics(s, t) for s, t in zip(start_ns, token_ns)]
    out: dict[str, float] = {}
    if not per:
        return out
    distribution("ttft", np.array([r["ttft_ns"] for r in per]), out)
    distribution("tpot", np.array([r["tpot_ns"] for r in per]), out)
    distribution("itl", np.concatenate([r["itl_ns"] for r in per]), out)
    distribution("e2e", np.array([r["e2e_ns"] for r in per]), out)
    span_s = (max(int(t[-1]) for t in token_ns) - min(int(s) for s in start_ns)) / 1e9
    tokens = sum(r["output_tokens"] for r in per) * batch_size
    out["output_tokens"] = float(tokens)
    if span_s > 0:
        out["output_tokens_per_s"] = tokens / span_s
        out["requests_per_s"] = len(per) * batch_size / span_s
    out["span_s"] = span_s
    return out


def split_tokens(token_ns: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Ragged per-request token times from the flat array + offsets (len = requests + 1)."""
    return [token_ns[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


# -- plan time ------------------------------------------------------------------------------


def check(cell: Cell) -> None:
    """Plan-time validation (called by Plan.from_grid); raises UsageError."""
    from bench import models

    if isinstance(cell.model, UserModel):
        raise UsageError("the generate scenario needs a decoder model card (task causal-lm), not a user module")
    card = models.card(cell.model)
    if not card.is_decoder:
        raise UsageError(f"the generate scenario needs a decoder LLM (task causal-lm): {card.name} is {card.task}")
    out = cell.output_len
    if not isinstance(out, int) or isinstance(out, bool) or out < 1:
        raise UsageError(f"output length must be a positive integer, got {out!r}")
    limit = card.shape.get("max_seq_len")
    if limit is not None and (cell.seq_len or 0) + out > int(limit):
        raise UsageError(f"{card.name}: {cell.seq_len} input + {out} output tokens is beyond its limit of "
                         f"{limit} tokens")
    if cell.workers_per_model > 1:
        raise UsageError("generate runs one request at a time per model copy: use --n-models for concurrent "
                         "requests and -b to batch prompts")


# -- worker side ----------------------------------------------------------------------------


def run_requests(generate: Callable[[Callable[[], None]], int], cell: Cell, *, stop_event=None,
                 leader: bool = True, context: Callable[[], Any] = nullcontext) -> dict[str, np.ndarray]:
    """Closed loop of generate requests: warm-up (flagged), then until the stopping rule says."""
    from bench.stats.stop import StopRule

    m = cell.measure
    rule = StopRule(m.min_duration_s, m.max_s, m.min_samples, m.target_ci)
    pc = time.perf_counter_ns
    begin = pc()
    warm_end = begin + int(m.warmup_s * 1e9)
    starts: list[int] = []
    ends: list[int] = []
    tokens: list[int] = []
    offsets = [0]
    measured_e2e: list[int] = []
    failed = True
    try:
        with context():
            while True:
                ticks: list[int] = []  # a fresh timer per request

                def on_token(ticks=ticks) -> None:
                    ticks.append(pc())

                t0 = pc()
                produced = generate(on_token)
                t1 = pc()
                if produced != cell.output_len or len(ticks) != cell.output_len:
                    raise RuntimeError(f"asked for exactly {cell.output_len} new tokens per sequence, got "
                                       f"{produced} ({len(ticks)} timed steps): generation stopped early?")
                starts.append(t0)
                ends.append(t1)
                tokens.extend(ticks)
                offsets.append(len(tokens))
                if t0 >= warm_end:
                    measured_e2e.append(ticks[-1] - t0)
                if stop_event is not None and stop_event.is_set():
                    break
                if leader and t1 >= warm_end and rule.should_stop(measured_e2e, (t1 - warm_end) / 1e9):
                    break
        failed = False
    finally:
        if stop_event is not None and (leader or failed):
            stop_event.set()
    start = np.asarray(starts, dtype=np.int64)
    return {"start_ns": start, "end_ns": np.asarray(ends, dtype=np.int64),
            "token_ns": np.asarray(tokens, dtype=np.int64), "token_offsets": np.asarray(offsets, dtype=np.int64),
            "warmup": start < warm_end}


# -- orchestrator side ----------------------------------------------------------------------


def summarise(parts: list[dict[str, np.ndarray]], cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from bench.stats.summary import latency_summary

    starts: list[int] = []
    token_lists: list[np.ndarray] = []
    warm = 0
    for p in parts:
        per_request = split_tokens(np.asarray(p["token_ns"]), np.asarray(p["token_offsets"]))
        for s, t, w in zip(np.asarray(p["start_ns"]).tolist(), per_request, np.asarray(p["warmup"]).tolist()):
            if w:
                warm += 1
            else:
                starts.append(s)
                token_lists.append(t)
    order = np.argsort(starts, kind="stable")
    starts = [starts[i] for i in order]
    token_lists = [token_lists[i] for i in order]
    row: dict[str, Any] = {"samples": len(starts), "warmup_samples": warm, "input_len": cell.seq_len}
    samples: dict[str, np.ndarray] = {}
    if starts:
        metrics = generate_metrics(starts, token_lists, cell.batch_size)
        row["duration_s"] = metrics.pop("span_s")
        row.update(metrics)
        row["throughput_avg"] = metrics.get("requests_per_s")
        per = [request_metrics(s, t) for s, t in zip(starts, token_lists)]
        e2e = np.array([r["e2e_ns"] for r in per], dtype=np.int64)
        row.update(latency_summary(e2e))  # latency_ms_* = e2e: what compare and report read
        flat = np.concatenate(token_lists)
        samples = {
            "latency_ns": e2e, "start_ns": np.asarray(starts, dtype=np.int64),
            "ttft_ns": np.array([r["ttft_ns"] for r in per], dtype=np.int64),
            "tpot_ns": np.array([r["tpot_ns"] for r in per], dtype=np.float64),
            "itl_ns": np.concatenate([r["itl_ns"] for r in per]),
            "token_ns": flat,
            "token_offsets": np.concatenate([[0], np.cumsum([len(t) for t in token_lists])]).astype(np.int64),
        }
    return row, samples


def _in_out(row: dict[str, Any]) -> str:
    out = row.get("output_len")
    if out is None or out != out:
        return ""
    return f"{row.get('input_len') or row.get('seq_len')}/{int(out)}"


class GenerateScenario(Scenario):
    """LLM decoding, one request (a batch of prompts) at a time per model copy, on the target's
    `generate` verb (transformers' generate on cpu/cuda, NxD Inference on neuron)."""

    verbs = ("generate",)
    profile = "single"
    uses = ("output_len",)
    columns = (Column("in/out", _in_out), Column("TTFT ms", "ttft_ms_p50"), Column("TPOT ms", "tpot_ms_p50"),
               Column("tokens/s", "output_tokens_per_s", 1))

    def plan(self, cell: Cell) -> Cell:
        return replace(cell, output_len=cell.output_len or DEFAULT_OUTPUT_LEN, n_models=cell.n_models or 1,
                       workers_per_model=cell.workers_per_model or 1)

    def check(self, cell: Cell) -> None:
        check(cell)
        super().check(cell)  # the target's generate verb: the compiler it generates with

    def measure(self, ctx: WorkerContext, cell: Cell, leader: bool, start_ns: int | None) -> dict[str, np.ndarray]:
        if ctx.prepared is None:
            raise RuntimeError("measure before prepare")
        return run_requests(ctx.prepared.fn, cell, stop_event=ctx.stop_event, leader=leader,
                            context=ctx.target.thread_context)

    def summarise(self, parts, cell):
        return summarise(parts, cell)

    def stability(self, summary, cell=None) -> str:
        from bench.stats.stability import instability

        return instability(summary, "latency")


SCENARIO = GenerateScenario()
