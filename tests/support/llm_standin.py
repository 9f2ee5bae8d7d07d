"""A stand-in OpenAI-compatible LLM server with exactly known timing, for tests and benchmarks.

A real HTTP/1.1 server (the standard library's ThreadingHTTPServer, one thread a request)
on 127.0.0.1 that streams `/v1/completions` and `/v1/chat/completions` as server-sent
events: the first token `first_ms` after the request arrives, then one token every
`gap_ms`, each on an absolute deadline (no drift), `max_tokens` tokens (or `min_tokens`,
honoured like vLLM), then a usage chunk and `data: [DONE]`. `/v1/models` lists `model`,
`/health` answers 200, `/metrics` exposes vLLM-named histograms of what it served.

Given a tokenizer (`tokenizer`: a directory holding tokenizer.json, or the file), it also
serves vLLM's `POST /tokenize` and `POST /detokenize` at its root, in vLLM's shapes
(vllm-project/vllm vllm/entrypoints/serve/tokenize/protocol.py, TokenizeCompletionRequest
{"model", "prompt", "add_special_tokens"} -> TokenizeResponse {"count", "max_model_len",
"tokens", "token_strs"}; DetokenizeRequest {"model", "tokens"} -> DetokenizeResponse {"prompt"};
routes in vllm/entrypoints/serve/tokenize/api_router.py), counts each completion's prompt
with it (usage, and `GET /prompt-tokens`: every completion prompt's token count). Without
one, /tokenize is 404, as on a server that has none.

Faults, for the harness's failure paths (`mode`):
- `error`: HTTP 500 on every completion;  `hang`: accepts and never answers;
- `close`: closes the connection after 2 tokens;  `malformed`: sends a line that is not SSE;
- `strict`: rejects `ignore_eos` / `min_tokens` with HTTP 422 (as transformers serve does);
- `packed`: every 2 tokens in one chunk (so usage and the chunk count disagree), no [DONE].

A reasoning model (`reasoning` R > 0): a chat stream's first R tokens go in the delta's
reasoning field (`reasoning_field`: "reasoning", vLLM's name since PR #27752, or
"reasoning_content", the earlier one), the rest in `content`; usage reports them in
`completion_tokens_details.reasoning_tokens` (the OpenAI API's field).

vLLM's profiler endpoints (`profiler_dir`, or vLLM's own flag `--profiler-config '{"profiler":
"torch", "torch_profiler_dir": DIR}'`): `POST /start_profile` and `POST /stop_profile`
answer 200 and the stop writes a Chrome trace named as torch's `tensorboard_trace_handler`
names it (`<worker>.<ms>.pt.trace.json.gz`, vllm/profiler/wrapper.py) into that directory.
Without one they are 404: vLLM mounts them only when a profiler is configured
(vllm/entrypoints/serve/profile/api_router.py, `--profiler-config` from v0.13).

It stops by itself after `lifetime_s` or `max_requests`, whichever comes first; with
`stop_after` N it stops (the process exits) on the N+1th completion request: a server that
dies mid-cell at a known request, however slow the machine.

    python tests/support/llm_standin.py --port 0 --first-ms 20 --gap-ms 5     # prints the port
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Standin:
    def __init__(self, first_ms: float = 20.0, gap_ms: float = 5.0, model: str = "standin", mode: str = "ok",
                 lifetime_s: float = 300.0, max_requests: int = 20000, port: int = 0, api_key: str = "",
                 tokenizer: str = "", stop_after: int = 0, reasoning: int = 0, reasoning_field: str = "reasoning",
                 profiler_dir: str = ""):
        self.first_ms, self.gap_ms, self.model, self.mode = first_ms, gap_ms, model, mode
        self.reasoning, self.reasoning_field = reasoning, reasoning_field
        self.profiler_dir = profiler_dir
        self.profiling: list[str] = []  # start/stop calls, in order
        # as vLLM's --api-key: every /v1 route wants "Authorization: Bearer KEY", else 401 (/health does not)
        self.api_key = api_key
        self.max_requests = max_requests
        self.stop_after = stop_after
        self.stopped_by = "lifetime over"
        self.requests = 0
        self.arrivals: list[int] = []
        self.last_body: dict = {}  # perf_counter_ns of each completion request's arrival
        self.lock = threading.Lock()
        self.hist = {"ttft": [0.0, 0], "itl": [0.0, 0], "e2e": [0.0, 0]}
        self.tokenizer = _load_tokenizer(tokenizer) if tokenizer else None
        self.prompt_tokens: list[int] = []  # with a tokenizer: each completion prompt's token count
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                # as uvicorn does: without it Nagle holds each small chunk for the client's delayed ACK (~40 ms)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _refused(self) -> bool:
                if standin.api_key and self.path.startswith("/v1") and \
                        self.headers.get("Authorization") != f"Bearer {standin.api_key}":
                    self._send(401, b'{"error": "Unauthorized"}')
                    return True
                return False

            def do_GET(self):
                if self._refused():
                    return
                if self.path in ("/health",):
                    return self._send(200, b"", "text/plain")
                if self.path.endswith("/models"):
                    body = {"object": "list", "data": [{"id": standin.model, "object": "model", "owned_by": "standin"}]}
                    return self._send(200, json.dumps(body).encode())
                if self.path == "/last-request":  # for tests and benchmarks: the last completion body
                    return self._send(200, json.dumps(standin.last_body).encode())
                if self.path == "/arrivals":  # for tests: when each completion request arrived (perf_counter_ns)
                    with standin.lock:
                        return self._send(200, json.dumps(standin.arrivals).encode())
                if self.path == "/prompt-tokens":  # for tests: every completion prompt's token count
                    with standin.lock:
                        return self._send(200, json.dumps(standin.prompt_tokens).encode())
                if self.path == "/version":
                    return self._send(200, b'{"version": "standin-1"}')
                if self.path == "/metrics":
                    return self._send(200, standin.metrics().encode(), "text/plain; version=0.0.4")
                return self._send(404, b'{"error": "not found"}')

            def do_POST(self):
                arrived = time.perf_counter_ns()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self._refused():
                    return
                if self.path in ("/tokenize", "/detokenize"):  # not a completion: not counted
                    return self._tokenize(body)
                if self.path in ("/start_profile", "/stop_profile"):
                    return self._profile(self.path)
                with standin.lock:
                    standin.requests += 1
                    standin.arrivals.append(arrived)
                    standin.last_body = body
                    if standin.stop_after and standin.requests > standin.stop_after:
                        standin.stopped_by = f"served {standin.stop_after} requests"
                        threading.Thread(target=standin.stop, daemon=True).start()
                        self.close_connection = True
                        return None  # no answer: the connection closes, the next ones are refused
                    if standin.requests > standin.max_requests:
                        return self._send(503, b'{"error": "request budget spent"}')
                chat = self.path.endswith("/chat/completions")
                if not (chat or self.path.endswith("/completions")):
                    return self._send(404, b'{"error": "not found"}')
                if body.get("model") != standin.model:
                    return self._send(404, json.dumps({"error": f"model {body.get('model')} not found"}).encode())
                mode = standin.mode
                if mode == "error":
                    return self._send(500, b'{"error": "internal error"}')
                if mode == "strict" and ("ignore_eos" in body or "min_tokens" in body):
                    bad = "ignore_eos" if "ignore_eos" in body else "min_tokens"
                    detail = [{"type": "extra_forbidden", "loc": ["body", bad], "msg": "Extra inputs are not permitted"}]
                    return self._send(422, json.dumps({"detail": detail}).encode())
                if mode == "hang":
                    time.sleep(3600)
                    return
                # max_completion_tokens: the OpenAI chat field, which vLLM's chat endpoint honours too
                n = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
                if body.get("min_tokens"):
                    n = max(n, int(body["min_tokens"]))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                prompt_tokens = len(str(body.get("prompt") or body.get("messages")).split())
                if standin.tokenizer is not None:
                    text = body["prompt"] if isinstance(body.get("prompt"), str) else \
                        "".join(str(m.get("content")) for m in body.get("messages") or [])
                    prompt_tokens = len(standin.tokenizer.encode(text, add_special_tokens=False).ids)
                    with standin.lock:
                        standin.prompt_tokens.append(prompt_tokens)
                # the chunk objects vLLM's OpenAI server sends (vllm/entrypoints/openai/protocol.py)
                kind = "chat.completion.chunk" if chat else "text_completion"
                created = int(time.time())
                first = arrived + int(standin.first_ms * 1e6)
                last = first
                k = 0
                try:
                    while k < n:
                        due = first + int(k * standin.gap_ms * 1e6)
                        _sleep_until(due)
                        take = 2 if mode == "packed" and k + 1 < n else 1
                        if mode == "close" and k == 2:
                            self.wfile.flush()
                            self.connection.shutdown(2)
                            self.close_connection = True
                            return
                        if mode == "malformed" and k == 1:
                            self._chunk(b"this is not an event\n\n")
                        text = "".join(f" t{k + j}" for j in range(take))
                        field = standin.reasoning_field if chat and k < standin.reasoning else "content"
                        choice = ({"index": 0, "delta": {field: text}, "finish_reason": None} if chat
                                  else {"index": 0, "text": text, "finish_reason": None})
                        self._event({"id": "x", "object": kind, "created": created, "model": standin.model,
                                     "choices": [choice]})
                        last = time.perf_counter_ns()
                        k += take
                    done = ({"index": 0, "delta": {}, "finish_reason": "length"} if chat
                            else {"index": 0, "text": "", "finish_reason": "length"})
                    self._event({"id": "x", "object": kind, "created": created, "model": standin.model,
                                 "choices": [done]})
                    self._event({"id": "x", "object": kind, "created": created, "model": standin.model, "choices": [],
                                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n,
                                           "total_tokens": prompt_tokens + n,
                                           **({"completion_tokens_details": {"reasoning_tokens": min(
                                               n, standin.reasoning)}} if chat and standin.reasoning else {})}})
                    if mode != "packed":
                        self._chunk(b"data: [DONE]\n\n")
                    self._chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    return
                with standin.lock:
                    standin.hist["ttft"][0] += (first - arrived) / 1e9
                    standin.hist["ttft"][1] += 1
                    standin.hist["e2e"][0] += (last - arrived) / 1e9
                    standin.hist["e2e"][1] += 1
                    standin.hist["itl"][0] += standin.gap_ms / 1e3 * max(n - 1, 0)
                    standin.hist["itl"][1] += max(n - 1, 0)

            def _profile(self, path: str) -> None:
                if not standin.profiler_dir:
                    return self._send(404, b'{"detail": "Not Found"}')
                standin.profiling.append(path)
                if path == "/stop_profile":
                    import gzip
                    import os

                    os.makedirs(standin.profiler_dir, exist_ok=True)
                    name = os.path.join(standin.profiler_dir, f"standin_worker.{int(time.time() * 1e3)}.pt.trace.json.gz")
                    trace = {"traceEvents": [{"ph": "X", "name": "standin::forward", "ts": 0, "dur": 10, "pid": 1,
                                              "tid": 1, "cat": "cpu_op"}]}
                    with gzip.open(name, "wt") as f:
                        json.dump(trace, f)
                return self._send(200, b"")

            def _tokenize(self, body) -> None:
                tok = standin.tokenizer
                if tok is None:
                    return self._send(404, b'{"detail": "Not Found"}')
                if body.get("model") not in (None, standin.model):
                    return self._send(404, json.dumps({"error": f"model {body.get('model')} not found"}).encode())
                if self.path == "/tokenize":
                    enc = tok.encode(str(body["prompt"]), add_special_tokens=bool(body.get("add_special_tokens", True)))
                    out = {"count": len(enc.ids), "max_model_len": 4096, "tokens": enc.ids,
                           "token_strs": enc.tokens if body.get("return_token_strs") else None}
                else:
                    out = {"prompt": tok.decode([int(i) for i in body["tokens"]], skip_special_tokens=False)}
                return self._send(200, json.dumps(out).encode())

            def _event(self, obj) -> None:
                self._chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _send(self, code: int, data: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.timer = threading.Timer(lifetime_s, self.stop)
        self.timer.daemon = True

    def metrics(self) -> str:
        lines = []
        names = {"ttft": "vllm:time_to_first_token_seconds", "itl": "vllm:inter_token_latency_seconds",
                 "e2e": "vllm:e2e_request_latency_seconds"}
        with self.lock:
            for key, name in names.items():
                s, c = self.hist[key]
                lines += [f"# HELP {name} stand-in", f"# TYPE {name} histogram",
                          f'{name}_bucket{{le="+Inf",model_name="{self.model}"}} {c}',
                          f'{name}_sum{{model_name="{self.model}"}} {s}', f'{name}_count{{model_name="{self.model}"}} {c}']
            lines += ["# HELP vllm:num_preemptions stand-in", "# TYPE vllm:num_preemptions counter",
                      f'vllm:num_preemptions_total{{model_name="{self.model}"}} 0',
                      "# HELP vllm:kv_cache_usage_perc stand-in", "# TYPE vllm:kv_cache_usage_perc gauge",
                      f'vllm:kv_cache_usage_perc{{model_name="{self.model}"}} 0.25']
        return "\n".join(lines) + "\n"

    def start(self) -> Standin:
        self.thread.start()
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Standin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _load_tokenizer(path: str):
    from pathlib import Path

    from tokenizers import Tokenizer

    p = Path(path)
    return Tokenizer.from_file(str(p / "tokenizer.json" if p.is_dir() else p))


def _sleep_until(due: int) -> None:
    while True:
        left = due - time.perf_counter_ns()
        if left <= 0:
            return
        time.sleep(left / 1e9)  # overshoots by ~0.1 ms on Linux; no spin (it would steal the client's core)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--first-ms", type=float, default=20.0)
    p.add_argument("--gap-ms", type=float, default=5.0)
    p.add_argument("--model", default="standin")
    p.add_argument("--mode", default="ok")
    p.add_argument("--lifetime", type=float, default=300.0)
    p.add_argument("--max-requests", type=int, default=20000)
    p.add_argument("--stop-after", type=int, default=0, help="stop on the completion request after this many")
    p.add_argument("--api-key", default="")
    p.add_argument("--tokenizer", default="", help="serve /tokenize and /detokenize with this tokenizer")
    p.add_argument("--reasoning", type=int, default=0, help="a chat stream's first N tokens are reasoning")
    p.add_argument("--reasoning-field", default="reasoning", choices=("reasoning", "reasoning_content"))
    p.add_argument("--profiler-dir", default="", help="answer /start_profile and /stop_profile, traces here")
    p.add_argument("--profiler-config", default="", help="vLLM's flag: JSON with torch_profiler_dir (same effect)")
    args = p.parse_args()
    if args.profiler_config:
        args.profiler_dir = json.loads(args.profiler_config).get("torch_profiler_dir") or args.profiler_dir
    s = Standin(args.first_ms, args.gap_ms, args.model, args.mode, args.lifetime, args.max_requests,
                port=args.port, api_key=args.api_key, tokenizer=args.tokenizer, stop_after=args.stop_after,
                reasoning=args.reasoning, reasoning_field=args.reasoning_field, profiler_dir=args.profiler_dir).start()
    print(s.port, flush=True)
    s.thread.join()
    print(f"stand-in: {s.stopped_by}, stopped", flush=True)


if __name__ == "__main__":
    main()
