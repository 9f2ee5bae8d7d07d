"""An endpoint cell's measured requests as one table (bench.targets.endpoint.requests
summarises from it), and the row columns that come from it beyond the latencies: which requests
met the SLOs (vLLM's goodput rule), a reasoning model's answer apart from its reasoning, and
how the requests split over data-parallel replicas."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from bench.plan.cell import Cell
from bench.stats.summary import distribution


def request_table(parts: list[dict[str, np.ndarray]], from_schedule: bool) -> dict[str, np.ndarray]:
    """Per measured request: start, TTFT, e2e, TPOT (ns), output tokens, ok; ITL gaps pooled."""
    rows: dict[str, list] = {k: [] for k in ("start", "ttft", "e2e", "tpot", "tokens", "chunks", "usage", "asked",
                                              "lag", "ok", "error", "replica", "ttft_content", "reasoning_usage",
                                              "reasoning_chunks")}
    itl: list[np.ndarray] = []
    for p in parts:
        offsets = np.asarray(p["chunk_offsets"])
        flat = np.asarray(p["chunk_ns"])
        n_here = len(p["scheduled_ns"])
        replica = np.asarray(p.get("replica", np.zeros(n_here, dtype=np.int64)))
        content = np.asarray(p.get("content_ns", np.full(n_here, -1, dtype=np.int64)))
        r_usage = np.asarray(p.get("usage_reasoning", np.full(n_here, -1, dtype=np.int64)))
        r_chunks = np.asarray(p.get("reasoning_chunks", np.zeros(n_here, dtype=np.int64)))
        for i in range(n_here):
            if bool(p["warmup"][i]):
                continue
            sched, sent = int(p["scheduled_ns"][i]), int(p["sent_ns"][i])
            t = flat[offsets[i]:offsets[i + 1]]
            ok = bool(p["ok"][i])
            start = sched if from_schedule else sent
            usage = int(p["usage_out"][i])
            tokens = usage if usage > 0 else int(t.size)
            rows["start"].append(start)
            rows["ok"].append(ok)
            rows["error"].append(str(p["errors"][i]))
            rows["asked"].append(int(p["asked"][i]))
            rows["chunks"].append(int(t.size))
            rows["usage"].append(usage)
            rows["tokens"].append(tokens)
            rows["lag"].append(sent - sched if sent >= 0 else -1)
            rows["replica"].append(int(replica[i]))
            rows["reasoning_usage"].append(int(r_usage[i]))
            rows["reasoning_chunks"].append(int(r_chunks[i]))
            # the first answer token, for a stream that reasoned first (-1 otherwise)
            answered = ok and int(content[i]) >= 0 and int(r_chunks[i]) > 0
            rows["ttft_content"].append(int(content[i]) - start if answered else -1)
            if ok:
                ttft, e2e = int(t[0]) - start, int(t[-1]) - start
                rows["ttft"].append(ttft)
                rows["e2e"].append(e2e)
                rows["tpot"].append((e2e - ttft) / (tokens - 1) if tokens > 1 else math.nan)
                itl.append(np.diff(t))
            else:
                rows["ttft"].append(-1)
                rows["e2e"].append(-1)
                rows["tpot"].append(math.nan)
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["itl"] = np.concatenate(itl) if itl else np.zeros(0, dtype=np.int64)
    return out


def good(req: dict[str, np.ndarray], slo: tuple[tuple[str, float], ...]) -> np.ndarray:
    """Which requests met every SLO bound (vLLM's goodput rule: each metric <= its bound)."""
    keep = req["ok"].astype(bool).copy()
    for metric, bound_ms in slo:
        values = req[{"e2e": "e2e", "ttft": "ttft", "tpot": "tpot"}[metric]].astype(np.float64) / 1e6
        keep &= np.nan_to_num(values, nan=0.0) <= bound_ms
    return keep


def reasoning_fields(req: dict[str, np.ndarray], ok: np.ndarray, row: dict[str, Any]) -> None:
    """A reasoning model's rows: TTFT to the first answer token beside TTFT to the first token of
    either kind (`ttft_ms_*`), and the reasoning tokens where usage gives them."""
    chunks = req["reasoning_chunks"][ok]
    if not chunks.size or not (chunks > 0).any():
        return
    content = req["ttft_content"][ok]
    answered = content >= 0
    if answered.any():
        distribution("ttft_content", content[answered], row)
    row["reasoning_requests"] = int((chunks > 0).sum())
    row["reasoning_chunks_mean"] = float(chunks.mean())
    usage = req["reasoning_usage"][ok]
    if (usage >= 0).any():
        row["reasoning_tokens_mean"] = float(usage[usage >= 0].mean())


def replica_fields(req: dict[str, np.ndarray], ok: np.ndarray, row: dict[str, Any], cell: Cell) -> None:
    """Data-parallel replicas (`--url A,B`): how many requests each received (every measured one,
    failed ones too) and completed; each one's latencies are in the samples (`replica`)."""
    n = len(cell.options.urls) if cell.options else 1
    if n < 2:
        return
    sent = np.bincount(req["replica"], minlength=n)
    done = np.bincount(req["replica"][ok], minlength=n)
    row["replicas"] = n
    row["replica_requests"] = json.dumps([int(x) for x in sent])
    row["replica_completed"] = json.dumps([int(x) for x in done])


def replica_of(i: int, share: int, n_shares: int, n_replicas: int) -> int:
    """The replica of request i, which client process `share` of `n_shares` sends as its
    (i // n_shares)-th: each process turns through the replicas, starting at its own, so the
    requests alternate between replicas whatever the number of processes (as AWS's LLMPerf
    patch routes them, one after another: llm-inference-benchmarking-guide.rst)."""
    return (i // n_shares + share) % n_replicas


def prompt_of(i: int, n_replicas: int) -> int:
    """Request i's prompt: with replicas, every prompt goes to each of them in turn (prompt
    i // n), so no prompt, short or long, stays with one replica."""
    return i // n_replicas if n_replicas > 1 else i
