"""One streamed request to an OpenAI-compatible server, timed chunk by chunk.

What is sent follows vLLM's own benchmark client (vllm/benchmarks/lib/endpoint_request_func.py,
`async_request_openai_completions` / `async_request_openai_chat_completions`): greedy
(`temperature` 0), `stream` on, `stream_options.include_usage` on, `max_tokens` the output
length, and, to force that length, vLLM's sampling extensions `ignore_eos` and `min_tokens`
(`forcing`). What is timed follows it too: a chunk that carries text is one arrival; TTFT is
the first one, ITL every gap after it, e2e the last; the usage chunk's `completion_tokens`
is the output length (vLLM's `output.output_tokens`), and the chunks carrying text are
counted beside it, so a server that packs several tokens in one chunk shows as a mismatch.
The clock is `perf_counter_ns` (CLOCK_MONOTONIC), the clock the schedules use.

Reasoning models stream their reasoning before the answer, in a field of the chat delta of
its own: `reasoning_content` (vLLM until it was renamed; kept for a while as "Deprecated: use
`reasoning` instead", vllm/entrypoints/openai/engine/protocol.py `DeltaMessage` @ d7e52523,
then removed, vllm PR #33402) and `reasoning` (vLLM's name since PR #27752,
docs/features/reasoning_outputs.md: "`reasoning` used to be called `reasoning_content`").
Both are read. A reasoning chunk is an arrival like any other, so TTFT counts to the first
reasoning or content token, whichever comes first, as AWS's LLMPerf patch measures it
(llm-inference-benchmarking-guide.rst, `llmperf_reasoning.patch`: "measure TTFT up to the
first reasoning token instead of the first answer token"); the first content chunk is kept
apart (`content_ns`). Reasoning tokens come from `usage.completion_tokens_details.
reasoning_tokens` (the OpenAI API's field) where the server fills it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.targets.endpoint.sse import EventParser, MalformedStream

FORCING_FIELDS = ("ignore_eos", "min_tokens")


@dataclass
class Outcome:
    """What one request did: when it was sent, when each text chunk arrived, what the server counted."""

    sent_ns: int
    chunk_ns: list[int] = field(default_factory=list)
    usage_completion: int | None = None
    usage_prompt: int | None = None
    finish_reason: str | None = None
    status: int | None = None
    error: str = ""
    text_chars: int = 0
    content_ns: int | None = None  # the first chunk carrying answer text (not reasoning)
    reasoning_chunks: int = 0
    usage_reasoning: int | None = None

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.chunk_ns)


def payload(api: str, model: str, prompt: str, output_len: int, forcing: tuple[str, ...]) -> dict[str, Any]:
    """The request body (vLLM's benchmark client's fields; `forcing`: the extensions to add)."""
    body: dict[str, Any] = {"model": model, "max_tokens": output_len, "temperature": 0.0, "stream": True,
                            "stream_options": {"include_usage": True}}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if "ignore_eos" in forcing:
        body["ignore_eos"] = True
    if "min_tokens" in forcing:
        body["min_tokens"] = output_len
    return body


def path(api: str) -> str:
    return "/chat/completions" if api == "chat" else "/completions"


async def stream_request(client, base_url: str, body: dict[str, Any], api: str, headers: dict[str, str],
                         sent_ns: int | None = None) -> Outcome:
    """Send `body`, read the stream to its end; errors go into the Outcome, never raised."""
    import httpx

    out = Outcome(sent_ns=sent_ns if sent_ns is not None else time.perf_counter_ns())
    parser = EventParser()
    pc = time.perf_counter_ns
    try:
        async with client.stream("POST", base_url + path(api), json=body, headers=headers) as resp:
            out.status = resp.status_code
            if resp.status_code >= 400:
                text = (await resp.aread()).decode("utf-8", "replace")
                out.error = f"HTTP {resp.status_code}: {' '.join(text.split())[:300]}"
                return out
            done = False
            async for raw in resp.aiter_raw():
                now = pc()
                for event in parser.feed(raw):
                    done = _take(event, now, out, api) or done
            for event in parser.close():
                done = _take(event, pc(), out, api) or done
            if not done and out.finish_reason is None:
                out.error = "the stream ended without a finish_reason or [DONE] (closed mid-stream?)"
    except MalformedStream as exc:
        out.error = f"malformed stream: {exc}"
    except httpx.TimeoutException as exc:
        out.error = f"timed out ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        out.error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    if not out.error and not out.chunk_ns:
        out.error = "the server streamed no text"
    return out


def _take(event, now: int, out: Outcome, api: str) -> bool:
    """Record one event; True when it was the closing [DONE]."""
    if event.done:
        return True
    chunk = event.json()
    if "error" in chunk:
        err = chunk["error"]
        raise MalformedStream(f"the server sent an error mid-stream: {err.get('message', err) if isinstance(err, dict) else err}")
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        out.usage_completion = _int(usage.get("completion_tokens"))
        out.usage_prompt = _int(usage.get("prompt_tokens"))
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict):
            out.usage_reasoning = _int(details.get("reasoning_tokens"))
    for choice in chunk.get("choices") or []:
        if api == "chat":
            delta = choice.get("delta") or {}
            content = delta.get("content") or ""
            reasoning = delta.get("reasoning") or delta.get("reasoning_content") or ""
        else:
            content, reasoning = choice.get("text") or "", ""
        if content and out.content_ns is None:
            out.content_ns = now
        if reasoning:
            out.reasoning_chunks += 1
        text = reasoning + content
        if text:
            out.chunk_ns.append(now)
            out.text_chars += len(text)
        if choice.get("finish_reason"):
            out.finish_reason = str(choice["finish_reason"])
    return False


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

