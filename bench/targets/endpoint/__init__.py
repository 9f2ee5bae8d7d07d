"""`-t endpoint`: the system under test is a server reached over HTTP (OpenAI-compatible).

A cell's "compiler" is the API it is driven through (`completions` or `chat`), its model the
name the server serves, its dtype `served` (whatever the server runs). The worker processes
are load-generating clients (bench.scenarios.endpoint): they need neither torch nor a model,
and are forked from the orchestrator (spawned where it runs other threads). The server's URL,
SLOs, tokenizer and dataset travel on the cell (`Cell.endpoint`); the URL is recorded with
any credentials taken out, and an API key only ever comes from an environment variable.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets.base import Availability, Target

APIS = ("completions", "chat")
SERVED_DTYPE = "served"


def redact(url: str) -> str:
    """The URL without user:password (never stored)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def check_url(url: str) -> str:
    """The base URL (ending in /v1 or whatever the user gave, no trailing slash); UsageError if not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r}: not an http:// or https:// URL")
    return url.rstrip("/")


def root_url(url: str) -> str:
    """The server's root from the API's base URL (…/v1 -> …): where /health, /metrics and /version are."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")


class EndpointTarget(Target):
    name = "endpoint"
    compilers = APIS
    dtypes = (SERVED_DTYPE, "fp32", "bf16", "fp16")
    # A client holds no SDK, model or device state, and an endpoint run's orchestrator imports
    # no torch: forking it starts a client in ~10 ms where spawn took ~0.2 s (a new interpreter
    # importing httpx and numpy again), a fifth of the command's own start-up. Never from a
    # process with other threads (a progress bar's, a Ray worker's gRPC): spawn there (pool.py).
    start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"

    def availability(self) -> Availability:
        return Availability(True)

    def default_compiler(self) -> tuple[list[str], str]:
        return ["completions"], ""

    def resolve(self, cell: Cell) -> Cell:
        if cell.endpoint is None:
            raise UsageError("-t endpoint needs --url (the server's OpenAI-compatible base URL, e.g. "
                             "http://127.0.0.1:8000/v1)")
        cell = replace(cell, dtype=SERVED_DTYPE, threads_per_worker=None)
        return super().resolve(cell)

    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        spec = cell.endpoint
        if spec is None:
            return {}
        return {"endpoint_url": redact(spec.url), "endpoint_launch": spec.launch or None,
                "endpoint_slo": ",".join(f"{m}={v:g}ms" for m, v in spec.slo) or None,
                "endpoint_tokenizer": spec.tokenizer, "endpoint_dataset": spec.dataset}

    def versions(self) -> dict[str, str]:
        return {}


def preflight(url: str, model: str, api_key_env: str | None = None, timeout_s: float = 10.0) -> list[str]:
    """The models the server lists; UsageError (one line) when it does not answer, refuses
    the key, or does not serve `model`. Prints one warning for plain http to another host."""
    import os
    import sys

    import httpx

    if urlsplit(url).scheme == "http" and not is_local(url):
        print(f"warning: {redact(url)} is plain http to another host: prompts and replies cross the network "
              "unencrypted", file=sys.stderr)
    if api_key_env and not os.environ.get(api_key_env):
        raise UsageError(f"--api-key-env {api_key_env}: that environment variable is not set")
    headers = {"Authorization": f"Bearer {os.environ[api_key_env]}"} if api_key_env else {}
    try:
        resp = httpx.get(url.rstrip("/") + "/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise UsageError(f"--url {redact(url)} does not answer ({type(exc).__name__}: {str(exc)[:120]})") from None
    if resp.status_code in (401, 403):
        raise UsageError(f"--url {redact(url)} refused the request (HTTP {resp.status_code}): "
                         "give the key's variable with --api-key-env NAME")
    try:
        ids = [str(m["id"]) for m in resp.json()["data"]]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"--url {redact(url)}: GET /models gave HTTP {resp.status_code}, not an OpenAI model "
                         "list (is the URL the API's base, e.g. http://127.0.0.1:8000/v1?)") from None
    if model not in ids:
        raise UsageError(f"-m {model}: not served at {redact(url)} (it serves: {', '.join(ids) or 'nothing'})")
    return ids


async def server_facts(client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """What the server says about itself: its models, and its version where it tells (vLLM: /version)."""
    facts: dict[str, Any] = {}
    root = root_url(url)
    try:
        resp = await client.get(url + "/models", headers=headers, timeout=5.0)
        facts["server_models"] = ",".join(str(m.get("id")) for m in resp.json().get("data", []))
        facts["server_header"] = resp.headers.get("server")
    except Exception:  # noqa: BLE001 - facts are best effort; the requests themselves decide the row
        pass
    try:
        resp = await client.get(root + "/version", timeout=5.0)
        if resp.status_code == 200:
            facts["server_version"] = str(resp.json().get("version"))
    except Exception:  # noqa: BLE001
        pass
    return facts


def plan_axes(targets: list[str], *, url: str | None, api: str | None = None, compiler: list[str] | None = None,
              concurrency: list[int] | None = None, tokenizer: str | None = None, dataset: str | None = None,
              slo: str | None = None, api_key_env: str | None = None, launch: str | None = None,
              launch_timeout: float | None = None) -> dict[str, Any]:
    """The endpoint flags as axes of Plan.from_grid: --url makes the target `endpoint`, --api
    its compiler, --concurrency its throughput cells' in-flight requests."""
    from bench.plan.cell import Endpoint, parse_slo

    flags = [f for f, v in (("--api", api), ("--concurrency", concurrency), ("--tokenizer", tokenizer),
                            ("--dataset", dataset), ("--slo", slo), ("--api-key-env", api_key_env),
                            ("--launch", launch), ("--launch-timeout", launch_timeout)) if v is not None]
    if url is None:
        if "endpoint" in targets:
            raise UsageError("-t endpoint needs --url (the server's OpenAI-compatible base URL, e.g. "
                             "http://127.0.0.1:8000/v1)")
        if flags:
            raise UsageError(f"{flags[0]}: only with -t endpoint --url URL")
        return {}
    if targets and targets != ["endpoint"]:
        raise UsageError(f"--url is the endpoint target's: give -t endpoint (or no -t), not -t {','.join(targets)}")
    if compiler and api:
        raise UsageError("give --api or -c, not both (on -t endpoint the compiler is the API)")
    if launch_timeout is not None and not launch_timeout > 0:
        raise UsageError(f"--launch-timeout must be a positive number of seconds, got {launch_timeout!r}")
    spec = Endpoint(url=check_url(url), tokenizer=tokenizer, dataset=dataset,
                    slo=parse_slo(slo) if slo is not None else (), api_key_env=api_key_env, launch=launch)
    out: dict[str, Any] = {"targets": ["endpoint"], "endpoint": spec}
    if api:
        out["compilers"] = [api]
    if concurrency:
        out["concurrencies"] = concurrency
    return out
