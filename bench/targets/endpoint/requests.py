"""The endpoint's verb, `stream`: a request is one streamed HTTP request to an OpenAI-compatible
server, under every load profile (bench.scenarios: latency, throughput, server, the search).

The system under test is a server reached over HTTP (`-t endpoint --url ... -m SERVED_NAME`);
the "model copy" processes are load-generating clients, each one asyncio event loop with one
httpx connection pool (bench.targets.endpoint.client streams and times the requests).

- `single` (the latency scenario): one request in flight (MLPerf SingleStream).
- `closed` (throughput): a closed loop at `--concurrency` N (`workers_per_model`), split over
  the client processes (`n_models`).
- `open` (server): arrivals at `--rate` on the seeded schedule of bench.targets.loops
  (`build_schedule`: Poisson, or gamma with `burstiness`), split round-robin over the client
  processes, so each process draws distinct gaps from one stream. TTFT and e2e count from the
  scheduled send time (no coordinated omission); `sched_lag_ms_p99` is how late the client
  sent, the client's own timing error.

Metrics, per request, with vLLM's definitions (vllm/benchmarks/serve.py, calculate_metrics):
TTFT = first text chunk - start; e2e = last chunk - start; ITL = every gap between text
chunks; TPOT = (e2e - TTFT) / (output tokens - 1), the output tokens being the server's
`usage.completion_tokens` (the text chunks when it sends no usage). Column names are the
`generate` scenario's (`ttft_ms_p50`, `itl_ms_p99`, ...); `latency_ms_*` are e2e, so compare
and report read endpoint rows like any other. Goodput (vLLM's `--goodput`): requests/s of
the requests that meet every `--slo` bound (ttft, tpot, e2e in ms).

A row is not `ok` when the client could not keep up: a closed loop whose event loop ran
late by more than CLIENT_LAG_MS at p99 is `unstable`; an open-loop cell whose sends were
that late is INVALID. Failed requests are counted (`requests_failed`, with the first error);
a cell with none completed is `failed`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from dataclasses import replace
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.stats.summary import distribution
from bench.targets import loops as open_loop
from bench.targets.base import Prepared
from bench.targets.endpoint.table import (
    good,
    prompt_of,
    reasoning_fields,
    replica_fields,
    replica_of,
    request_table,
)
from bench.targets.requests import Column, PrepareReport, Requests, WorkerContext

CLIENT_LAG_MS = 10.0  # p99 lateness of the client beyond which its figures are the client's
LAG_TICK_S = 0.005  # the event-loop lag probe's period
SLO_ATTAINMENT = 0.95  # a rate "holds" (max-rate search) when this share of requests meets every SLO
SEARCH_CONCURRENCY = 8  # the closed loop that estimates capacity before a max-rate search
PROMPT_POOL = 64  # distinct synthetic prompts per cell, cycled
DEFAULT_REQUEST_TIMEOUT_S = 60.0  # the longest wait for the next bytes of a response
# tests only: the client blocks this many ms before each send, a late client made on purpose
# (read once per cell, in the client process; unset, nothing changes)
SEND_DELAY_ENV = "TRNBENCH_TEST_SEND_DELAY_MS"


# -- worker side ----------------------------------------------------------------------------

_PROMPTS: dict[tuple, list] = {}  # per process: prompts are built once per (tokenizer, shape)
_PROMPT_TOKENIZER: dict[tuple, str] = {}  # per process: which tokenizer built them (the row's prompt_tokenizer)
_FORCING: dict[tuple, tuple[str, ...]] = {}  # per process: what the server accepted


def _prompts(cell: Cell):
    from bench.targets.endpoint import prompts

    spec = cell.options
    key = _prompts_key(cell)
    if key not in _PROMPTS:
        tok, _PROMPT_TOKENIZER[key] = prompts.resolve(spec, cell.model_name)  # local, else the server's /tokenize
        if spec.dataset:
            _PROMPTS[key] = prompts.from_dataset(spec.dataset, tok, cell.output_len)
        else:
            _PROMPTS[key] = prompts.synthetic(tok, PROMPT_POOL, int(cell.seq_len), int(cell.output_len))
    return _PROMPTS[key]


def _prompts_key(cell: Cell) -> tuple:
    spec = cell.options
    return (spec.tokenizer or cell.model_name, spec.url, spec.dataset, cell.seq_len, cell.output_len)


def _timeout(cell: Cell):
    import httpx

    read = cell.measure.cell_timeout_s or DEFAULT_REQUEST_TIMEOUT_S
    return httpx.Timeout(connect=5.0, read=read, write=10.0, pool=None)


def prepare(cell: Cell) -> PrepareReport:
    """Prompts, and one request that finds what the server honours to force the output length."""
    from bench.targets.endpoint import client as http

    spec = cell.options
    report = PrepareReport(ready_at=time.perf_counter())
    t_prompts = time.perf_counter()
    plist = _prompts(cell)
    prompts_s = time.perf_counter() - t_prompts
    fkey = (spec.url, cell.model_name, cell.compiler)

    facts: dict[str, Any] = {}

    async def probe() -> tuple[http.Outcome, tuple[str, ...], str]:
        import httpx

        from bench.targets.endpoint.http import server_facts

        async with httpx.AsyncClient(timeout=_timeout(cell)) as c:
            facts.update({k: v for k, v in (await server_facts(c, spec.url, spec.headers())).items() if v})
            p = plist[0]
            forcing = http.FORCING_FIELDS
            out = await http.stream_request(c, spec.url, http.payload(cell.compiler, cell.model_name, p.text,
                                                                        p.output_len, forcing), cell.compiler,
                                            spec.headers())
            note = ""
            if out.status in (400, 422):  # e.g. transformers serve: 422 on vLLM's sampling extensions
                rejected = out.error
                forcing = ()
                out = await http.stream_request(c, spec.url, http.payload(cell.compiler, cell.model_name, p.text,
                                                                            p.output_len, forcing),
                                                cell.compiler, spec.headers())
                if out.ok:
                    note = f"server rejected {'+'.join(http.FORCING_FIELDS)} ({rejected[:120]}): sent max_tokens only"
            return out, forcing, note

    t0 = time.perf_counter()
    out, forcing, note = asyncio.run(probe())
    if not out.ok:
        raise RuntimeError(f"the first request failed: {out.error or 'no text'}{_log_tail(cell)}")
    _FORCING[fkey] = forcing
    report.first_call_ms = (time.perf_counter() - t0) * 1e3
    report.build_s = prompts_s  # the tokenizer's load and the prompts
    report.extra = {**facts, "output_forcing": "+".join(forcing) or "max_tokens only", "output_forcing_note": note,
                    # the prompts' tokens as sent (the nearest reachable length where seq_len is not)
                    "input_tokens": float(np.mean([p.tokens for p in plist])),
                    "prompt_tokenizer": _PROMPT_TOKENIZER.get(_prompts_key(cell))}
    return report


def _log_tail(cell: Cell) -> str:
    """The launched server's last log lines, when there is one (a server that died)."""
    from bench.targets.endpoint.launch import log_tail

    spec = cell.options
    tail = log_tail(spec.log_path, 5) if spec and spec.log_path else ""
    return f"; server log: {tail}" if tail else ""


async def _lag_probe(stop: asyncio.Event, lags: list[int]) -> None:
    """How late the event loop wakes: a loop that cannot keep up shows here first."""
    pc = time.perf_counter_ns
    while not stop.is_set():
        due = pc() + int(LAG_TICK_S * 1e9)
        await asyncio.sleep(LAG_TICK_S)
        lags.append(max(0, pc() - due))


async def _load(cell: Cell, share: int, n_shares: int, start_ns: int | None, stop_event,
                in_flight: int | None) -> dict[str, np.ndarray]:
    """This client process's share of the load: `in_flight` requests kept in flight between
    the processes (a closed loop), or (None) the arrival schedule (the open loop)."""
    import httpx

    from bench.targets.endpoint import client as http
    from bench.targets.endpoint import server_metrics

    spec = cell.options
    plist = _prompts(cell)
    forcing = _FORCING.get((spec.url, cell.model_name, cell.compiler), http.FORCING_FIELDS)
    headers = spec.headers()
    m = cell.measure
    pc = time.perf_counter_ns
    # (scheduled ns, warm-up, asked output, outcome, replica)
    results: list[tuple[int, bool, int, http.Outcome, int]] = []
    lags: list[int] = []
    done_probe = asyncio.Event()
    counter = {"i": share}
    delay_s = float(os.environ.get(SEND_DELAY_ENV) or 0) / 1e3

    urls = spec.urls

    def body(i: int):
        """Request i of the cell (this process sends i = share, share + n_shares, ...): its prompt
        and its replica (bench.targets.endpoint.table.replica_of)."""
        p = plist[prompt_of(i, len(urls)) % len(plist)]
        replica = replica_of(i, share, n_shares, len(urls))
        return p.output_len, http.payload(cell.compiler, cell.model_name, p.text, p.output_len, forcing), replica

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    from bench.targets.endpoint import local_server

    server = set().union(*(local_server.server_pids(u) for u in urls)) if share == 0 else set()
    server_cpu = local_server.cpu_seconds(server)
    async with httpx.AsyncClient(timeout=_timeout(cell), limits=limits) as c:
        before = await _scrape_all(c, urls) if share == 0 else None
        probe = asyncio.create_task(_lag_probe(done_probe, lags))
        t0 = start_ns if start_ns is not None else pc() + open_loop.LOCAL_LEAD_NS
        await _sleep_until(t0)
        warm_end = t0 + int(m.warmup_s * 1e9)
        if in_flight is None:
            await _open(c, cell, spec, headers, body, share, n_shares, t0, warm_end, results, stop_event, delay_s)
        else:
            slots = max(1, in_flight // n_shares + (share < in_flight % n_shares))
            need = math.ceil(m.min_samples / n_shares)
            min_end, max_end = warm_end + int(m.min_duration_s * 1e9), warm_end + int(m.max_s * 1e9)

            def more() -> bool:
                now = pc()
                if now >= max_end or (stop_event is not None and stop_event.is_set()):
                    return False
                measured = sum(1 for r in results if not r[1])
                return now < min_end or measured < need

            async def slot() -> None:
                while more():
                    i = counter["i"]
                    counter["i"] += n_shares
                    asked, b, replica = body(i)
                    if delay_s:
                        time.sleep(delay_s)  # SEND_DELAY_ENV: the whole loop stalls, as on a slow CPU
                    sent = pc()
                    out = await http.stream_request(c, urls[replica], b, cell.compiler, headers, sent_ns=sent)
                    results.append((sent, sent < warm_end, asked, out, replica))

            await asyncio.gather(*(slot() for _ in range(slots)))
        done_probe.set()
        await probe
        after = await _scrape_all(c, urls) if share == 0 else None
    server_cpu = local_server.cpu_seconds(server) - server_cpu if server else 0.0
    arrays = _arrays(results, lags, server_metrics.summarise(before, after) if before is not None else {})
    arrays["sut_cpu_s"] = np.array(server_cpu)  # counted as the cell's own CPU (bench.execute.hoststate)
    arrays["server_pids"] = np.array(len(server))
    return arrays


async def _open(c, cell, spec, headers, body, share, n_shares, t0, warm_end, results, stop_event,
                delay_s: float = 0.0) -> None:
    """This process's share of the open-loop schedule; requests still out at the deadline are given up."""
    from bench.targets.endpoint import client as http

    m = cell.measure
    offsets, window = open_loop.build_schedule(m, float(cell.rate_qps), cell.burstiness)
    mine = offsets[share::n_shares]
    deadline = t0 + int((m.warmup_s + window + open_loop.drain_s(m, window)) * 1e9)
    tasks = []

    async def one(i: int, due: int) -> None:
        asked, b, replica = body(i)
        if delay_s:
            time.sleep(delay_s)  # SEND_DELAY_ENV: the whole loop stalls, as on a slow CPU
        out = await http.stream_request(c, spec.urls[replica], b, cell.compiler, headers,
                                        sent_ns=time.perf_counter_ns())
        results.append((due, due < warm_end, asked, out, replica))

    for k, off in enumerate(mine.tolist()):
        due = t0 + int(off)
        if stop_event is not None and stop_event.is_set():
            break
        await _sleep_until(due)
        tasks.append(asyncio.create_task(one(share + k * n_shares, due)))
    remaining = (deadline - time.perf_counter_ns()) / 1e9
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, remaining))
        for t in pending:
            t.cancel()
        for t in pending:
            try:
                await t
            except asyncio.CancelledError:
                pass
    served = {r[0] for r in results}
    for k, off in enumerate(mine.tolist()):  # scheduled but not served by the deadline
        due = t0 + int(off)
        if due not in served:
            replica = replica_of(share + k * n_shares, share, n_shares, len(spec.urls))
            results.append((due, due < warm_end, 0, http.Outcome(sent_ns=-1, error="unserved"), replica))


async def _window(cell: Cell, n: int) -> int:
    """`n` requests one after another (the profiled pass); how many completed."""
    import httpx

    from bench.targets.endpoint import client as http

    spec = cell.options
    plist = _prompts(cell)
    forcing = _FORCING.get((spec.url, cell.model_name, cell.compiler), http.FORCING_FIELDS)
    done = 0
    urls = spec.urls
    async with httpx.AsyncClient(timeout=_timeout(cell)) as c:
        for i in range(n):  # as one client process sends them (replica_of, prompt_of)
            p = plist[prompt_of(i, len(urls)) % len(plist)]
            body = http.payload(cell.compiler, cell.model_name, p.text, p.output_len, forcing)
            out = await http.stream_request(c, urls[replica_of(i, 0, 1, len(urls))], body, cell.compiler,
                                            spec.headers())
            done += int(out.ok)
    return done


async def _sleep_until(due_ns: int) -> None:
    pc = time.perf_counter_ns
    while True:
        left = due_ns - pc()
        if left <= 0:
            return
        await asyncio.sleep(left / 1e9)


async def _scrape_all(c, urls: tuple[str, ...]) -> dict[str, float] | None:
    """Every replica's metrics, summed (bench.targets.endpoint.server_metrics.combine)."""
    from bench.targets.endpoint import server_metrics

    return server_metrics.combine([await _scrape(c, u) for u in urls])


async def _scrape(c, base_url: str) -> dict[str, float] | None:
    """The server's Prometheus metrics (at the URL's root), or None where it has none."""
    from bench.targets.endpoint import server_metrics
    from bench.targets.endpoint.http import root_url

    try:
        resp = await c.get(root_url(base_url) + "/metrics", timeout=5.0)
        if resp.status_code != 200 or "# TYPE" not in resp.text:
            return None
        return server_metrics.parse(resp.text)
    except Exception:  # noqa: BLE001 - no metrics is an answer, not a failure
        return None


def _arrays(results, lags: list[int], server: dict[str, Any]) -> dict[str, np.ndarray]:
    results = sorted(results, key=lambda r: r[0])
    chunks = [r[3].chunk_ns for r in results]
    return {
        "scheduled_ns": np.array([r[0] for r in results], dtype=np.int64),
        "sent_ns": np.array([r[3].sent_ns for r in results], dtype=np.int64),
        "warmup": np.array([r[1] for r in results], dtype=bool),
        "asked": np.array([r[2] for r in results], dtype=np.int64),
        "ok": np.array([r[3].ok for r in results], dtype=bool),
        "usage_out": np.array([-1 if r[3].usage_completion is None else r[3].usage_completion for r in results],
                              dtype=np.int64),
        "usage_in": np.array([-1 if r[3].usage_prompt is None else r[3].usage_prompt for r in results],
                             dtype=np.int64),
        "chunk_ns": np.array([t for ch in chunks for t in ch], dtype=np.int64),
        "chunk_offsets": np.concatenate([[0], np.cumsum([len(ch) for ch in chunks])]).astype(np.int64),
        "errors": np.array([r[3].error for r in results], dtype=object),
        "replica": np.array([r[4] for r in results], dtype=np.int64),
        # reasoning models: the first content chunk (after the reasoning), what usage says of reasoning
        "content_ns": np.array([-1 if r[3].content_ns is None else r[3].content_ns for r in results], dtype=np.int64),
        "usage_reasoning": np.array([-1 if r[3].usage_reasoning is None else r[3].usage_reasoning for r in results],
                                    dtype=np.int64),
        "reasoning_chunks": np.array([r[3].reasoning_chunks for r in results], dtype=np.int64),
        "loop_lag_ns": np.array(lags, dtype=np.int64),
        "server_metrics": np.array(json.dumps(server)),
    }


def measure(ctx: WorkerContext, cell: Cell, start_ns: int | None, in_flight: int | None) -> dict[str, np.ndarray]:
    """One cell's load from this client process. The garbage collector is off while it runs (as
    vLLM's benchmark freezes its heap, vllm/benchmarks/serve.py): a collection stops the event
    loop for milliseconds, which would show as the server's latency."""
    import gc

    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return asyncio.run(_load(cell, ctx.index, cell.n_models, start_ns, ctx.stop_event, in_flight))
    finally:
        gc.enable()
        gc.unfreeze()


# -- orchestrator side ----------------------------------------------------------------------


def summarise(parts: list[dict[str, np.ndarray]], cell: Cell,
              profile: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from bench.stats.summary import latency_summary

    is_server = profile == "open"
    req = request_table(parts, from_schedule=is_server)
    ok = req["ok"].astype(bool)
    n = int(ok.size)
    failed = [e for e, k in zip(req["error"], ok) if not k and e != "unserved"]
    unserved = sum(1 for e in req["error"] if e == "unserved")
    row: dict[str, Any] = {"samples": int(ok.sum()), "requests_failed": len(failed), "input_len": cell.seq_len,
                           "warmup_samples": int(sum(int(np.asarray(p["warmup"]).sum()) for p in parts))}
    if failed:
        row["request_error"] = failed[0][:300]
    if is_server:
        row["offered_rate_qps"] = cell.rate_qps
        row["requests_unserved"] = unserved
        row["scheduled_rate_qps"] = n / open_loop.build_schedule(cell.measure, cell.rate_qps, cell.burstiness)[1]
    lags = np.concatenate([np.asarray(p["loop_lag_ns"]) for p in parts]) if parts else np.zeros(0)
    if lags.size:
        row["client_loop_lag_ms_p99"] = float(np.percentile(lags / 1e6, 99))
    sent_lag = req["lag"][req["lag"] >= 0] if req["lag"].size else req["lag"]
    if is_server and sent_lag.size:
        row["sched_lag_ms_p99"] = float(np.percentile(sent_lag / 1e6, 99))
    for p in parts:
        row.update(json.loads(str(p["server_metrics"])) or {})
        if int(p.get("server_pids", 0)):
            row["server_cpu_s"] = float(p["sut_cpu_s"])  # the local server's own CPU time in the window
    samples: dict[str, np.ndarray] = {}
    if ok.any():
        start, e2e = req["start"][ok], req["e2e"][ok]
        ttft, tpot = req["ttft"][ok], req["tpot"][ok]
        distribution("ttft", ttft, row)
        distribution("tpot", tpot, row)
        distribution("itl", req["itl"], row)
        distribution("e2e", e2e, row)
        row.update(latency_summary(e2e.astype(np.int64)))  # latency_ms_* = e2e, as in generate
        span = (int((start + e2e).max()) - int(start.min())) / 1e9
        row["duration_s"] = span
        tokens = req["tokens"][ok]
        row["output_tokens"] = float(tokens.sum())
        if span > 0:
            row["output_tokens_per_s"] = float(tokens.sum()) / span
            row["requests_per_s"] = float(ok.sum()) / span
            row["throughput_avg"] = row["requests_per_s"]
            if is_server:
                row["achieved_rate_qps"] = row["requests_per_s"]
        usage = req["usage"][ok]
        chunks = req["chunks"][ok]
        row["output_tokens_stream_mean"] = float(chunks.mean())
        if (usage >= 0).any():
            row["output_tokens_usage_mean"] = float(usage[usage >= 0].mean())
            row["token_count_mismatches"] = int(((usage >= 0) & (usage != chunks)).sum())
            if row["token_count_mismatches"]:
                row["token_count_note"] = (f"usage and the stream disagree on {row['token_count_mismatches']} of "
                                           f"{int(ok.sum())} requests (chunks carrying several tokens, or none): "
                                           "TPOT uses usage, ITL is per chunk")
        else:
            row["token_count_note"] = "the server sent no usage: output tokens are the chunks carrying text"
        asked = req["asked"][ok]
        row["requests_short"] = int((tokens < asked).sum())
        row["output_len_achieved_mean"] = float(tokens.mean())
        slo = cell.options.slo if cell.options else ()
        if slo:
            met = good(req, slo)
            row["slo_attainment"] = float(met.sum() / max(n, 1))
            row["goodput_rps"] = float(met.sum()) / span if span > 0 else math.nan
        samples = {"latency_ns": e2e.astype(np.int64), "start_ns": start.astype(np.int64),
                   "ttft_ns": ttft.astype(np.int64), "tpot_ns": tpot.astype(np.float64),
                   "itl_ns": req["itl"].astype(np.int64), "replica": req["replica"][ok].astype(np.int16),
                   # the first answer token after the reasoning (-1: no reasoning, or no answer)
                   "ttft_content_ns": req["ttft_content"][ok].astype(np.int64)}
        reasoning_fields(req, ok, row)
        replica_fields(req, ok, row, cell)
    else:
        row["failure"] = f"no request completed: {failed[0] if failed else 'nothing was sent'}"[:400]
    refused = sum("ConnectError" in e for e in failed)
    if refused and ok.any():  # it answered, then stopped: the cell's figures are not the server's
        row["requests_completed"] = row["samples"]
        row["samples"] = 0
        row["failure"] = (f"the server stopped answering mid-cell ({refused} requests refused after "
                          f"{int(ok.sum())} completed){_log_tail(cell)}")[:1000]
    elif not ok.any() and failed:
        row["failure"] += _log_tail(cell)
    if is_server:
        row["validity"], row["validity_reason"] = validity(row, cell, n)
        row["stability"] = ""
    else:
        row["stability"] = closed_stability(row)
    return row, samples


def client_lag_reason(row: dict[str, Any]) -> str:
    lag = row.get("sched_lag_ms_p99", row.get("client_loop_lag_ms_p99"))
    if lag is not None and lag > CLIENT_LAG_MS:
        return (f"the client ran late (p99 {lag:.3g} ms > {CLIENT_LAG_MS:g} ms): the figures hold the client's "
                "own delays (give it more processes with --n-models, or a host of its own)")
    return ""


def closed_stability(row: dict[str, Any]) -> str:
    from bench.stats.stability import instability

    reasons = [client_lag_reason(row)]
    if row.get("requests_failed"):
        reasons.append(f"{row['requests_failed']} requests failed ({row.get('request_error', '')[:120]})")
    if row.get("samples"):
        reasons.append(instability(row, "latency"))
    return "; ".join(r for r in reasons if r)


def validity(row: dict[str, Any], cell: Cell, n: int) -> tuple[str, str]:
    """('VALID' | 'INVALID', reason) of an open-loop cell: served, kept up, met its SLOs."""
    reasons = []
    if row.get("requests_unserved"):
        reasons.append(f"{row['requests_unserved']} of {n} requests not served by the end (overload)")
    if row.get("requests_failed"):
        reasons.append(f"{row['requests_failed']} requests failed ({row.get('request_error', '')[:120]})")
    lag = client_lag_reason(row)
    if lag:
        reasons.append(lag)
    achieved, scheduled = row.get("achieved_rate_qps"), row.get("scheduled_rate_qps")
    if not reasons and achieved and scheduled and achieved < open_loop.KEEP_UP * scheduled:
        reasons.append(f"achieved {achieved:.4g} req/s is under {open_loop.KEEP_UP:.0%} of the scheduled "
                       f"{scheduled:.4g} req/s (the server does not keep up)")
    attained = row.get("slo_attainment")
    if attained is not None and attained < SLO_ATTAINMENT:
        reasons.append(f"{attained:.0%} of the requests met the SLOs ({_slo_text(cell)}), under {SLO_ATTAINMENT:.0%}")
    if row.get("samples", 0) < cell.measure.min_samples and not reasons:
        reasons.append(f"only {row.get('samples', 0)} requests completed (min_samples {cell.measure.min_samples})")
    return ("INVALID", "; ".join(reasons)) if reasons else ("VALID", "")


def _slo_text(cell: Cell) -> str:
    return ",".join(f"{m}={v:g}ms" for m, v in (cell.options.slo if cell.options else ()))


# -- plan time ------------------------------------------------------------------------------


def check(cell: Cell, profile: str) -> None:
    if cell.options is None:
        raise UsageError(f"the {cell.scenario} scenario on -t endpoint needs --url")
    if not cell.options.dataset and cell.seq_len is None:
        raise UsageError("-t endpoint needs --seq-len N (prompt tokens) or --dataset FILE")
    if cell.output_len is None and not cell.options.dataset:
        raise UsageError("-t endpoint needs --output-len N (tokens asked for)")
    if profile == "open" and cell.rate_qps is None and not cell.options.slo:
        raise UsageError("--find-max-rate on -t endpoint needs --slo (e.g. ttft=500ms)")


class StreamRequests(Requests):
    """A streamed HTTP request to the endpoint (see the module docstring)."""

    verb = "stream"
    uses = ("output_len",)
    search_bound = "--slo"
    long = True  # an LLM request is seconds long
    columns = (Column("in/out", lambda r: _in_out(r)), Column("TTFT ms", "ttft_ms_p50"), Column("ITL ms", "itl_ms_p50"),
               Column("tokens/s", "output_tokens_per_s", 1), Column("goodput r/s", "goodput_rps", 2))

    def plan(self, cell: Cell, profile: str) -> Cell:
        if profile == "open":  # the client sends on the schedule: no slots to fill
            return replace(cell, n_models=cell.n_models or 1, workers_per_model=1)
        return replace(cell, n_models=cell.n_models or 1, workers_per_model=cell.workers_per_model or 1)

    def check(self, cell: Cell, profile: str) -> None:
        check(cell, profile)

    def calibration(self, cell: Cell) -> Cell:
        return replace(cell, scenario="throughput", rate_qps=None, burstiness=None,
                       workers_per_model=SEARCH_CONCURRENCY)

    def prepare(self, ctx: WorkerContext, cell: Cell, leader: bool, cache_root) -> PrepareReport:
        report = prepare(cell)
        ctx.prepared = Prepared(fn=lambda: None, inputs=())  # nothing to call here: the server is the model
        return report

    def closed(self, ctx: WorkerContext, cell: Cell, in_flight: int, leader: bool) -> dict[str, np.ndarray]:
        return measure(ctx, cell, None, in_flight)

    def open(self, ctx: WorkerContext, cell: Cell, start_ns: int | None) -> dict[str, np.ndarray]:
        return measure(ctx, cell, start_ns, None)

    def profile_pass(self, ctx: WorkerContext, cell: Cell, capture) -> int:
        """A short window inside the server's profiler: a few requests, one after another, round-robin."""
        from bench.targets.endpoint.profile import WINDOW_REQUESTS

        return asyncio.run(_window(cell, WINDOW_REQUESTS))

    def summarise(self, parts, cell: Cell, profile: str):
        return summarise(parts, cell, profile)

    def stability(self, summary: dict[str, Any], profile: str) -> str:
        return summary.get("stability", "")


def _in_out(row: dict[str, Any]) -> str:
    out = row.get("output_len")
    if out is None or out != out:
        return "dataset"
    return f"{row.get('input_len') or row.get('seq_len')}/{int(out)}"


STREAM = StreamRequests()
