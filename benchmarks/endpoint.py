"""The endpoint target measured against a minimal reference client (docs/targets.md, "LLM servers over HTTP").

    .venv/bin/python benchmarks/endpoint.py agreement     # trnbench vs a bare httpx client, interleaved
    .venv/bin/python benchmarks/endpoint.py startup       # trnbench's own start-up per command
    .venv/bin/python benchmarks/endpoint.py max-rate      # the highest rate the client keeps, vs the stand-in
    .venv/bin/python benchmarks/endpoint.py peers --aiperf A --guidellm G   # AIPerf and GuideLLM beside it
    .venv/bin/python benchmarks/endpoint.py peers-max-rate --aiperf A --guidellm G  # the rate each keeps
    .venv/bin/python benchmarks/endpoint.py all

`agreement` serves a tiny random Llama with `transformers serve` (the server on core 0, the
load generators on core 1, with taskset) and measures TTFT, ITL, TPOT and e2e at concurrency
1, concurrency 4 and a Poisson rate near half of capacity, alternating trnbench and the
reference client round by round; it prints the medians and the ratios trnbench / reference.
The reference is the smallest correct client: one asyncio loop, httpx, perf_counter_ns at
each text chunk, vLLM's definitions. `max-rate` offers rising Poisson rates to the stand-in
server (tests/support/llm_standin.py: first token 20 ms, a token every 5 ms, 8 tokens) and prints the
highest one whose requests were sent on time (sched_lag_ms_p99 under 10 ms) and served; at
each rate, how much TTFT p50 grew over one request in flight (the `latency` scenario, first)
and how far the gaps between the server's arrivals were from the schedule's (p90).
Nothing here is a unit test: figures move with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-m", "bench.cli"]
SERVER_CORE, CLIENT_CORE = "0", "1"


def taskset(core: str) -> list[str]:
    return ["taskset", "-c", core] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 180) -> None:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"no server at {url}")


def trnbench(url: str, model: str, tok: str, scenario: str, extra: list[str], out: Path) -> dict:
    res = subprocess.run([*taskset(CLIENT_CORE), *CLI, "run", "-t", "endpoint", "--url", url, "-m", model,
                          "--tokenizer", tok, "-s", scenario, *extra, "--out", str(out), "--no-progress",
                          "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if res.returncode not in (0, 1):
        raise SystemExit(f"trnbench failed: {res.stderr[-600:]}")
    return json.loads(res.stdout)[0]


async def _reference(url: str, model: str, prompt: str, output_len: int, concurrency: int, rate: float | None,
                     warmup_s: float, duration_s: float) -> dict[str, float]:
    """The minimal client, on trnbench's own load: a closed loop at `concurrency` for
    `warmup_s` + `duration_s`, or the same seeded open-loop schedule (bench.scenarios.server)
    with latency from the scheduled time; requests started in the warm-up are not counted."""
    import httpx

    from bench.plan.cell import Measure
    from bench.scenarios.server import build_schedule

    body = {"model": model, "prompt": prompt, "max_tokens": output_len, "temperature": 0.0, "stream": True,
            "stream_options": {"include_usage": True}}
    ttft, e2e, itl, tpot = [], [], [], []

    async def one(c, start=None, counted=True):
        t0 = start if start is not None else time.perf_counter_ns()
        chunks, tokens = [], None
        async with c.stream("POST", url + "/completions", json=body) as r:
            buf = b""
            async for raw in r.aiter_raw():
                now = time.perf_counter_ns()
                buf += raw
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    data = event.decode().removeprefix("data: ").strip()
                    if not data or data == "[DONE]":
                        continue
                    obj = json.loads(data)
                    if obj.get("usage"):
                        tokens = obj["usage"]["completion_tokens"]
                    if any(ch.get("text") for ch in obj.get("choices") or []):
                        chunks.append(now)
        if not counted:
            return
        tokens = tokens or len(chunks)
        ttft.append((chunks[0] - t0) / 1e6)
        e2e.append((chunks[-1] - t0) / 1e6)
        itl.extend(np.diff(chunks) / 1e6)
        if tokens > 1:
            tpot.append((chunks[-1] - chunks[0]) / 1e6 / (tokens - 1))

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=None)) as c:
        await one(c, counted=False)  # as trnbench's first request, which finds what the server honours
        t0 = time.perf_counter_ns()
        warm_end, end = t0 + int(warmup_s * 1e9), t0 + int((warmup_s + duration_s) * 1e9)
        if rate is None:
            async def slot():
                while time.perf_counter_ns() < end:
                    start = time.perf_counter_ns()
                    await one(c, start, counted=start >= warm_end)

            await asyncio.gather(*(slot() for _ in range(concurrency)))
        else:
            offsets, _ = build_schedule(Measure(warmup_s=warmup_s, min_duration_s=duration_s, min_samples=30), rate)
            tasks = []
            for due in (t0 + offsets).tolist():
                while time.perf_counter_ns() < due:
                    await asyncio.sleep((due - time.perf_counter_ns()) / 1e9)
                tasks.append(asyncio.create_task(one(c, int(due), counted=due >= warm_end)))
            await asyncio.gather(*tasks)
    return {"ttft": float(np.median(ttft)), "itl": float(np.median(itl)), "tpot": float(np.median(tpot)),
            "e2e": float(np.median(e2e))}


def reference(url, model, tok_dir, seq_len, output_len, concurrency, rate, warmup_s, duration_s) -> dict[str, float]:
    """Run the reference client in a process of its own on the client core (as trnbench's is)."""
    code = (f"import sys, json, asyncio; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'benchmarks')!r});"
            "from endpoint import _reference; from bench.targets.endpoint import prompts;"
            f"t = prompts.load_tokenizer({tok_dir!r}); p = prompts.synthetic(t, 1, {seq_len}, {output_len})[0].text;"
            f"print(json.dumps(asyncio.run(_reference({url!r}, {model!r}, p, {output_len}, {concurrency}, {rate!r}, "
            f"{warmup_s}, {duration_s}))))")
    res = subprocess.run([*taskset(CLIENT_CORE), sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(res.stdout.strip().splitlines()[-1])


def standin_server(tmp: Path) -> tuple[subprocess.Popen, str, str, str]:
    from tests.support.endpoint import train_tokenizer

    tok = train_tokenizer(tmp / "tok")
    port = free_port()
    proc = subprocess.Popen([*taskset(SERVER_CORE), sys.executable, str(ROOT / "tests" / "support" / "llm_standin.py"),
                             "--port", str(port), "--lifetime", "1200"], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}/v1", "standin", str(tok)


def tiny_server(tmp: Path) -> tuple[subprocess.Popen, str, str, str]:
    from tests.support.endpoint import tiny_llama, train_tokenizer

    tok = train_tokenizer(tmp / "tok")
    model = tiny_llama(tmp / "llama", tok)
    port = free_port()
    exe = Path(sys.executable).parent / "transformers"
    proc = subprocess.Popen([*taskset(SERVER_CORE), str(exe), "serve", str(model), "--host", "127.0.0.1", "--port",
                             str(port), "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    wait_ready(url)
    return proc, url, str(model), str(tok)


def agreement(rounds: int, server: str) -> dict:
    """Per round, trnbench and the reference on the same load, in A B B A order; the median
    of the per-round ratios (adjacent windows pair out the machine's drift)."""
    seq, out_len, warm, dur = 32, 32, 1.0, 3.0
    ratios: dict[str, dict[str, list[float]]] = {}
    values: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        proc, url, model, tok = tiny_server(tmp) if server == "transformers" else standin_server(tmp)
        try:
            cap = trnbench(url, model, tok, "throughput", ["--concurrency", "4", "--seq-len", str(seq),
                                                          "--output-len", str(out_len), "--duration", "3"], tmp / "cap")
            rate = round(0.5 * cap["requests_per_s"], 1)
            print(f"agreement ({server}): capacity at concurrency 4: {cap['requests_per_s']:.1f} req/s; Poisson at "
                  f"{rate} req/s", flush=True)
            cases = {"concurrency 1": ("latency", [], 1, None), "concurrency 4": ("throughput", ["--concurrency", "4"], 4, None),
                     f"poisson {rate}/s": ("server", ["--rate", str(rate)], 1, rate)}
            for r in range(rounds):
                for name, (scenario, flags, conc, rt) in cases.items():
                    def ours(scenario=scenario, flags=flags, r=r):
                        return trnbench(url, model, tok, scenario, [*flags, "--seq-len", str(seq), "--output-len",
                                                                     str(out_len), "--duration", str(dur), "--warmup",
                                                                     str(warm), "--min-samples", "10"], tmp / f"t{r}")

                    def theirs(conc=conc, rt=rt):
                        return reference(url, model, tok, seq, out_len, conc, rt, warm, dur)

                    if r % 2 == 0:
                        row, ref = ours(), theirs()
                    else:
                        ref, row = theirs(), ours()
                    line = []
                    for m in ("ttft", "itl", "tpot", "e2e"):
                        ratios.setdefault(name, {}).setdefault(m, []).append(row[f"{m}_ms_p50"] / ref[m])
                        values.setdefault(name, {}).setdefault(f"trnbench {m}", []).append(row[f"{m}_ms_p50"])
                        values[name].setdefault(f"reference {m}", []).append(ref[m])
                        line.append(f"{m.upper()} {row[f'{m}_ms_p50']:.2f}/{ref[m]:.2f}")
                    print(f"agreement round {r + 1}/{rounds} {name}: trnbench/reference ms " + ", ".join(line), flush=True)
        finally:
            os.killpg(proc.pid, 9)
    summary = {}
    for name, by_metric in ratios.items():
        line = []
        for m, rs in by_metric.items():
            t, ref = statistics.median(values[name][f"trnbench {m}"]), statistics.median(values[name][f"reference {m}"])
            summary[f"{name} {m}"] = {"ratio_median": statistics.median(rs), "ratio_min": min(rs),
                                      "ratio_max": max(rs), "trnbench_ms": t, "reference_ms": ref}
            line.append(f"{m.upper()} x{statistics.median(rs):.3f} [{min(rs):.3f}, {max(rs):.3f}] ({t:.2f} vs {ref:.2f} ms)")
        print(f"agreement ({server}) {name}, trnbench / reference, median of {rounds} per-round ratios [range]: "
              + "; ".join(line))
    return summary


def startup(repeats: int) -> dict:
    from tests.support.endpoint import train_tokenizer
    from tests.support.llm_standin import Standin

    walls, parts = [], []
    with tempfile.TemporaryDirectory() as tmp_s, Standin(lifetime_s=300) as s:
        tok = str(train_tokenizer(Path(tmp_s) / "tok"))
        for i in range(repeats):
            t0 = time.perf_counter()
            row = trnbench(s.url, "standin", tok, "latency", ["--seq-len", "16", "--output-len", "8", "--duration",
                                                              "1", "--warmup", "0.2", "--min-samples", "10"],
                           Path(tmp_s) / f"o{i}")
            wall = time.perf_counter() - t0
            measured = row["warmup_s"] + row["duration_s"]
            walls.append(wall - measured)
            parts.append({"worker start": row["worker_start_s"], "tokenizer + prompts": row["build_s"],
                          "first request": row["first_call_ms"] / 1e3})
            print(f"startup {i + 1}/{repeats}: wall {wall:.2f} s, of which measuring {measured:.2f} s; "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in parts[-1].items()), flush=True)
    t0 = time.perf_counter()
    subprocess.run([*CLI, "--help"], capture_output=True, check=True, cwd=ROOT)
    help_s = time.perf_counter() - t0
    out = {"overhead_s_median": statistics.median(walls), "help_s": help_s,
           **{k: statistics.median(p[k] for p in parts) for k in parts[0]}}
    print(f"startup: {out['overhead_s_median']:.2f} s per command beyond the measurement (median of {repeats}); "
          f"trnbench --help {help_s:.2f} s; worker start {out['worker start']:.2f} s, tokenizer + prompts "
          f"{out['tokenizer + prompts']:.3f} s, first request {out['first request']:.3f} s")
    return out


def max_rate(rates: list[float]) -> dict:
    from tests.support.endpoint import train_tokenizer

    port = free_port()
    proc = subprocess.Popen([*taskset(SERVER_CORE), sys.executable, str(ROOT / "tests" / "support" / "llm_standin.py"),
                             "--port", str(port), "--lifetime", "600"], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    url = f"http://127.0.0.1:{port}/v1"
    kept = None
    shape = ["--seq-len", "16", "--output-len", "8", "--duration", "3", "--warmup", "0.5"]
    per_rate = []
    try:
        with tempfile.TemporaryDirectory() as tmp_s:
            tok = str(train_tokenizer(Path(tmp_s) / "tok"))
            alone = trnbench(url, "standin", tok, "latency", shape, Path(tmp_s) / "alone")["ttft_ms_p50"]
            print(f"max-rate: one request in flight: TTFT p50 {alone:.2f} ms", flush=True)
            for rate in rates:
                out = Path(tmp_s) / f"r{rate}"
                row = trnbench(url, "standin", tok, "server", ["--rate", str(rate), *shape], out)
                ok = row["validity"] == "VALID"
                gap_err = _arrival_gap_error_ms(url, out / row["run_id"], row["cell_id"])
                growth = row.get("ttft_ms_p50", float("nan")) - alone
                per_rate.append({"rate_qps": rate, "validity": row["validity"],
                                 "sched_lag_ms_p99": row.get("sched_lag_ms_p99"), "ttft_ms_p50": row.get("ttft_ms_p50"),
                                 "ttft_growth_ms": growth, "arrival_gap_error_ms_p90": gap_err})
                print(f"max-rate: {rate:g} req/s: {row['validity']}, sched_lag_ms_p99 {row.get('sched_lag_ms_p99', 0):.2f}, "
                      f"achieved {row.get('achieved_rate_qps', 0):.1f}, TTFT p50 {row.get('ttft_ms_p50', 0):.2f} ms "
                      f"({growth:+.2f} over one in flight), the server's arrival gaps off the schedule's by "
                      f"{gap_err:.2f} ms (p90); {row['validity_reason']}", flush=True)
                if ok:
                    kept = rate
                else:
                    break
    finally:
        proc.kill()
    print(f"max-rate: the client (one process, core {CLIENT_CORE}) kept {kept} req/s against the stand-in "
          f"(core {SERVER_CORE})")
    return {"max_rate": kept, "ttft_one_in_flight_ms": alone, "rates": per_rate}


def _arrival_gap_error_ms(url: str, run_dir: Path, cell_id: str) -> float:
    """p90 of |the server's gap between arrivals - the schedule's gap|, ms, over the cell's
    measured requests (the last ones the stand-in saw): a client that sends in bursts or on a
    clock of its own is off by about a whole gap."""
    from bench.results.store import load_samples

    sched = np.sort(load_samples(run_dir, cell_id)["start_ns"])
    arrived = np.sort(np.asarray(_arrivals(url)[-len(sched):], dtype=np.int64))
    if sched.size < 3 or arrived.size != sched.size:
        return float("nan")
    return float(np.percentile(np.abs(np.diff(arrived) - np.diff(sched)) / 1e6, 90))


def _aiperf(exe: str, url: str, hf_home: str, tok_name: str, conc: int, rate: float | None, n: int,
            out: Path, in_tokens: int = 32, out_tokens: int = 32) -> dict[str, float]:
    load = ["--concurrency", str(conc)] if rate is None else ["--request-rate", str(rate), "--request-rate-mode",
                                                               "poisson"]
    cmd = [*taskset(CLIENT_CORE), exe, "profile", "-m", "standin", "--url", url.removesuffix("/v1"), "--endpoint-type",
           "completions", "--streaming", "--synthetic-input-tokens-mean", str(in_tokens),
           "--synthetic-input-tokens-stddev", "0", "--output-tokens-mean", str(out_tokens), "--output-tokens-stddev", "0",
           *load, "--request-count", str(n),
           "--tokenizer", tok_name, "--artifact-dir", str(out), "--ui", "none"]
    subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "HF_HOME": hf_home,
                                                                        "HF_HUB_OFFLINE": "1"})
    d = json.loads((out / "profile_export_aiperf.json").read_text())
    return {"ttft": d["time_to_first_token"]["p50"], "itl": d["inter_token_latency"]["p50"],
            "itl_chunks": d["inter_chunk_latency"]["p50"], "e2e": d["request_latency"]["p50"],
            "tokens": d["output_sequence_length"]["p50"], "usage_tokens": d["usage_completion_tokens"]["p50"]}


def _guidellm(exe: str, url: str, hf_home: str, tok_dir: str, conc: int, rate: float | None, n: int,
              out: Path, in_tokens: int = 32, out_tokens: int = 32) -> dict[str, float]:
    profile = f"kind=concurrent,streams={conc}" if rate is None else f"kind=poisson,rate={rate}"
    cmd = [*taskset(CLIENT_CORE), exe, "run", "--backend", f"kind=openai_http,target={url.removesuffix('/v1')}",
           "--profile", profile, "--constraint", f"kind=max_requests,count={n}", "--data",
           f"kind=synthetic_text,prompt_tokens={in_tokens},output_tokens={out_tokens}", "--tokenizer",
           f"kind=huggingface_auto,model={tok_dir}",
           "--output", f"kind=json,path={out / 'out.json'}", "--disable-console-interactive"]
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "HF_HOME": hf_home,
                                                                        "HF_HUB_OFFLINE": "1"})
    m = json.loads((out / "out.json").read_text())["benchmarks"][0]["metrics"]

    def med(k: str) -> float:
        return float(m[k]["successful"]["median"])

    return {"ttft": med("time_to_first_token_ms"), "itl": med("inter_token_latency_ms"),
            "e2e": 1e3 * med("request_latency"), "tokens": med("output_token_count")}


def _peer_files(tmp: Path, tok: str) -> tuple[Path, Path]:
    """A model folder (config.json beside the tokenizer) for GuideLLM, and a scratch Hugging
    Face cache holding it as `local/tiny` for AIPerf (which resolves tokenizers by hub name)."""
    from tests.support.endpoint import tiny_llama

    llama = tiny_llama(tmp / "llama", Path(tok))
    hf = tmp / "hf"
    snap = hf / "hub" / "models--local--tiny" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        shutil.copy(llama / f, snap / f)
    (hf / "hub" / "models--local--tiny" / "refs").mkdir()
    (hf / "hub" / "models--local--tiny" / "refs" / "main").write_text("0" * 40)
    return hf, llama


def _arrivals(url: str) -> list[int]:
    import httpx

    return httpx.get(url.removesuffix("/v1") + "/arrivals", timeout=10).json()


def peers_max_rate(aiperf_exe: str | None, guidellm_exe: str | None, rates: list[float]) -> dict:
    """The highest Poisson rate each tool sends on time against the stand-in (first token 20 ms,
    then 5 ms a token, 8 tokens), judged alike for all three from what the server saw: the
    rate of the middle 80 % of its arrivals (n) within 3 standard errors of a Poisson count
    (|seen/offered - 1| <= 3/sqrt(n): neither behind nor in bursts), and the tool's own TTFT
    p50 under 30 ms (a client that reads its streams late inflates it). Each tool on core 1,
    the server on core 0; each rate for ~3 s of requests."""
    kept: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        proc, url, model, tok = standin_server(tmp)
        hf, llama = _peer_files(tmp, tok)
        tools = {"trnbench": "", "aiperf": aiperf_exe, "guidellm": guidellm_exe}
        try:
            for tool, exe in tools.items():
                if exe is None:
                    continue
                kept[tool] = None
                for rate in rates:
                    before = len(_arrivals(url))
                    n = int(rate * 3)
                    out = tmp / f"{tool}-{rate:g}"
                    try:
                        if tool == "trnbench":
                            row = trnbench(url, model, tok, "server", ["--rate", str(rate), "--seq-len", "32",
                                                                       "--output-len", "8", "--duration", "3",
                                                                       "--warmup", "0.5"], out)
                            ttft = row["ttft_ms_p50"]
                        elif tool == "aiperf":
                            ttft = _aiperf(exe, url, str(hf), "local/tiny", 1, rate, n, out, 32, 8)["ttft"]
                        else:
                            ttft = _guidellm(exe, url, str(hf), str(llama), 1, rate, n, out, 32, 8)["ttft"]
                    except (subprocess.CalledProcessError, KeyError, ValueError, OSError) as exc:
                        print(f"peers-max-rate: {tool} at {rate:g} req/s failed: {str(exc)[:200]}", flush=True)
                        break
                    seen = np.sort(np.asarray(_arrivals(url)[before:], dtype=np.int64))
                    mid = seen[seen.size // 10: seen.size - seen.size // 10]  # not a probe before, a drain after
                    served = (mid.size - 1) / ((mid[-1] - mid[0]) / 1e9) if mid.size > 2 else 0.0
                    ok = mid.size > 2 and abs(served / rate - 1) <= 3 / np.sqrt(mid.size) and ttft < 30.0
                    print(f"peers-max-rate: {tool} offered {rate:g} req/s: the server saw {served:.1f} req/s "
                          f"({seen.size} requests), the tool's TTFT p50 {ttft:.1f} ms: "
                          f"{'kept the rate' if ok else 'off the rate or late'}", flush=True)
                    if not ok:
                        break
                    kept[tool] = rate
        finally:
            os.killpg(proc.pid, 9)
    print("peers-max-rate: the highest rate kept: " + ", ".join(f"{t} {r if r is not None else '-'} req/s"
                                                                for t, r in kept.items()))
    return kept


def peers(aiperf_exe: str | None, guidellm_exe: str | None, rounds: int) -> dict:
    """trnbench, the reference client, AIPerf and GuideLLM against the stand-in (first token
    20 ms after arrival, then one every 5 ms): each tool's medians and its wall time per command.
    AIPerf cannot load a tokenizer from a local directory offline: it is given the same
    tokenizer placed in a scratch Hugging Face cache as `local/tiny`."""
    results: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        proc, url, model, tok = standin_server(tmp)
        hf, llama = _peer_files(tmp, tok)
        cases = {"concurrency 1": ("latency", [], 1, None), "concurrency 4": ("throughput", ["--concurrency", "4"], 4, None),
                 "poisson 10/s": ("server", ["--rate", "10"], 1, 10.0)}
        try:
            for r in range(rounds):
                for name, (scenario, flags, conc, rate) in cases.items():
                    for tool in ("trnbench", "reference", "aiperf", "guidellm"):
                        t0 = time.perf_counter()
                        if tool == "trnbench":
                            row = trnbench(url, model, tok, scenario, [*flags, "--seq-len", "32", "--output-len", "32",
                                                                       "--duration", "3", "--warmup", "0.5",
                                                                       "--min-samples", "20"], tmp / f"t{r}")
                            got = {m: row[f"{m}_ms_p50"] for m in ("ttft", "itl", "e2e")}
                            got["tokens"], measured = row.get("output_tokens_usage_mean"), row["warmup_s"] + row["duration_s"]
                        elif tool == "reference":
                            got, measured = reference(url, model, tok, 32, 32, conc, rate, 0.5, 3.0), 3.5
                        elif tool == "aiperf" and aiperf_exe:
                            got = _aiperf(aiperf_exe, url, str(hf), "local/tiny", conc, rate, 60, tmp / f"a{r}{conc}{rate}")
                            measured = None
                        elif tool == "guidellm" and guidellm_exe:
                            got = _guidellm(guidellm_exe, url, str(hf), str(llama), conc, rate, 60, tmp / f"g{r}{conc}{rate}")
                            measured = None
                        else:
                            continue
                        wall = time.perf_counter() - t0
                        got["wall_s"] = wall
                        got["overhead_s"] = wall - measured if measured else None
                        for k, v in got.items():
                            results.setdefault(f"{name} {tool}", {}).setdefault(k, []).append(v)
                        print(f"peers round {r + 1}/{rounds} {name} {tool}: " + ", ".join(
                            f"{k} {v:.2f}" for k, v in got.items() if isinstance(v, (int, float))), flush=True)
        finally:
            os.killpg(proc.pid, 9)
    summary = {k: {m: statistics.median([x for x in v if x is not None]) for m, v in d.items()
                   if any(x is not None for x in v)} for k, d in results.items()}
    for name in cases:
        ref = summary.get(f"{name} reference", {})
        for tool in ("trnbench", "aiperf", "guidellm"):
            s = summary.get(f"{name} {tool}")
            if not s:
                continue
            ratios = ", ".join(f"{m.upper()} x{s[m] / ref[m]:.3f}" for m in ("ttft", "itl", "e2e") if m in s and ref.get(m))
            print(f"peers {name}: {tool} vs reference: {ratios}; wall {s['wall_s']:.1f} s; tokens {s.get('tokens')}")
    return summary


def main() -> None:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["agreement", "startup", "max-rate", "peers", "peers-max-rate", "all"])
    p.add_argument("--aiperf", metavar="EXE", help="peers: AIPerf's `aiperf` (e.g. a venv of its own: pip install aiperf)")
    p.add_argument("--guidellm", metavar="EXE", help="peers: GuideLLM's `guidellm` (pip install guidellm)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rates", default="50,100,200,300,400,600,800")
    p.add_argument("--server", choices=["standin", "transformers"], default="standin",
                   help="agreement: the stand-in (known timing) or transformers serve (a real server)")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    figures = {}
    if args.what in ("startup", "all"):
        figures["startup"] = startup(args.repeats)
    if args.what in ("max-rate", "all"):
        figures["max_rate"] = max_rate([float(r) for r in args.rates.split(",")])
    if args.what == "peers":
        figures["peers"] = peers(args.aiperf, args.guidellm, args.rounds)
    if args.what == "peers-max-rate":
        figures["peers_max_rate"] = peers_max_rate(args.aiperf, args.guidellm, [float(r) for r in args.rates.split(",")])
    if args.what in ("agreement", "all"):
        figures["agreement"] = agreement(args.rounds, args.server)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
