"""`-t endpoint`: the system under test is a server reached over HTTP (OpenAI-compatible).

A cell's "compiler" is the API it is driven through (`completions` or `chat`), its model the
name the server serves, its dtype `served` (whatever the server runs). The worker processes
are load-generating clients (bench.targets.endpoint.requests): they need neither torch nor a model,
and are forked from the orchestrator (spawned where it runs other threads). The server's URL,
SLOs, tokenizer and dataset travel on the cell as one typed value (`Cell.options`, an
`Endpoint`, bench.targets.endpoint.options); the URL is recorded with
any credentials taken out, and an API key only ever comes from an environment variable.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets.base import Availability, Need, Target
from bench.targets.endpoint.http import check_url, is_local, redact
from bench.targets.endpoint.options import Endpoint

APIS = ("completions", "chat")
SERVED_DTYPE = "served"


class EndpointTarget(Target):
    name = "endpoint"
    verbs = ("stream",)
    kind = "http"  # the accelerator is the server's: a client needs CPUs only
    needs_card = False  # the model is the name the server serves
    options_type = Endpoint
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
        if cell.options is None:
            raise UsageError("-t endpoint needs --url (the server's OpenAI-compatible base URL, e.g. "
                             "http://127.0.0.1:8000/v1)")
        cell = replace(cell, dtype=SERVED_DTYPE, threads_per_worker=None)
        return super().resolve(cell)

    def requests(self, verb: str):
        if verb == "stream":
            from bench.targets.endpoint.requests import STREAM

            return STREAM
        return super().requests(verb)

    def ray_need(self, cell: Cell, on: str | None, nodes: list[dict[str, float]]) -> Need:
        """A client's CPUs; a server on this host's loopback is reached from this node only."""
        need = super().ray_need(cell, on, nodes)
        spec = cell.options
        return Need(need.num_cpus, need.num_gpus, need.resources, on_driver=spec is not None and any(is_local(u) for u in spec.urls))

    @contextlib.contextmanager
    def session(self, cells: list[Cell], out: Path, run_id: str, timeout_s: float | None) -> Iterator[list[Cell]]:
        """The `--launch` server started and every server checked (it answers, serves the model,
        has a tokenizer for the prompts) before anything is written; stopped at the end."""
        from bench.targets.endpoint.session import serving

        with serving(cells, out, run_id, timeout_s) as ready:
            yield ready

    def adopt(self, out: Path, run_id: str) -> None:
        from bench.targets.endpoint.session import adopt_log

        adopt_log(out, run_id)

    def profiler(self, cell: Cell, out_dir: Path):
        """The server's own profiler (vLLM's /start_profile), around a short window of requests."""
        from bench.targets.endpoint.profile import ServerCapture

        return ServerCapture(cell, out_dir)

    def options_from_dict(self, data: dict[str, Any]) -> Endpoint:
        return Endpoint.from_dict(data)

    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        spec = cell.options
        if spec is None:
            return {}
        return {"endpoint_url": ",".join(redact(u) for u in spec.urls), "endpoint_replicas": len(spec.urls),
                "endpoint_launch": spec.launch or None,
                "endpoint_slo": ",".join(f"{m}={v:g}ms" for m, v in spec.slo) or None,
                "endpoint_tokenizer": spec.tokenizer, "endpoint_dataset": spec.dataset,
                "server_start_s": spec.server_start_s, "server_compile_cache": spec.compile_cache}

    def versions(self) -> dict[str, str]:
        return {}


def replica_urls(text: str) -> tuple[str, ...]:
    """`--url A,B,...`: each replica's base URL, in order; one line for an empty element or a repeat."""
    parts = [p.strip() for p in str(text).split(",")]
    for i, part in enumerate(parts, 1):
        if not part:
            raise UsageError(f"--url {text!r}: element {i} is empty (give URLs separated by commas, e.g. "
                             "http://127.0.0.1:8000/v1,http://127.0.0.1:8001/v1)")
    urls = tuple(check_url(p) for p in parts)
    if len(set(urls)) < len(urls):
        raise UsageError(f"--url {text!r}: a replica is given twice")
    return urls


def plan_axes(targets: list[str], *, url: str | None, api: str | None = None, compiler: list[str] | None = None,
              concurrency: list[int] | None = None, tokenizer: str | None = None, dataset: str | None = None,
              slo: str | None = None, api_key_env: str | None = None, launch: str | None = None,
              launch_timeout: float | None = None) -> dict[str, Any]:
    """The endpoint flags as axes of Plan.from_grid: --url makes the target `endpoint`, --api
    its compiler, --concurrency its throughput cells' in-flight requests."""
    from bench.targets.endpoint.options import parse_slo

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
    urls = replica_urls(url)
    spec = Endpoint(url=urls[0], replicas=urls if len(urls) > 1 else (), tokenizer=tokenizer, dataset=dataset,
                    slo=parse_slo(slo) if slo is not None else (), api_key_env=api_key_env, launch=launch)
    out: dict[str, Any] = {"targets": ["endpoint"], "options": spec}
    if api:
        out["compilers"] = [api]
    if concurrency:
        out["concurrencies"] = concurrency
    return out
