"""The endpoint target's options (one typed value in a cell: `Cell.options`) and its SLOs."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from bench.errors import UsageError
from bench.plan.cell import TargetOptions

SLO_METRICS = ("ttft", "tpot", "e2e")


def parse_slo(text: str) -> tuple[tuple[str, float], ...]:
    """'ttft=500ms,tpot=50ms' -> (("tpot", 50.0), ("ttft", 500.0)) (ms; 's' suffix allowed; sorted)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        name, sep, value = part.partition("=")
        name, value = name.strip().lower(), value.strip().lower()
        name = "e2e" if name == "e2el" else name
        scale = 1.0
        if value.endswith("ms"):
            value = value[:-2]
        elif value.endswith("s"):
            value, scale = value[:-1], 1e3
        try:
            ms = float(value) * scale
        except ValueError:
            ms = math.nan
        if not sep or name not in SLO_METRICS or not (0 < ms < math.inf):
            raise UsageError(f"--slo {text!r}: each part must be METRIC=VALUE with METRIC one of "
                             f"{', '.join(SLO_METRICS)} and VALUE a positive time (e.g. ttft=500ms,tpot=50ms)")
        out[name] = ms
    if not out:
        raise UsageError(f"--slo {text!r}: no bound given (e.g. ttft=500ms,tpot=50ms)")
    return tuple(sorted(out.items()))


def slo_text(slo: tuple[tuple[str, float], ...]) -> str:
    return ",".join(f"{m}={v:g}ms" for m, v in slo)


@dataclass(frozen=True)
class Endpoint(TargetOptions):
    """Where an endpoint cell's server is and how to drive it, one typed value in the cell
    (`Cell.options`). The URL is not part of the key (the same model behind two URLs is the
    comparison a user makes); the SLOs a row is judged on and the prompt dataset's file name
    are (`key()`). The API key is never here, only the name of the variable that holds it."""

    url: str
    tokenizer: str | None = None
    dataset: str | None = None  # a local JSONL / JSON file of prompts (bench.targets.endpoint.prompts)
    slo: tuple[tuple[str, float], ...] = ()
    api_key_env: str | None = None
    launch: str | None = None  # the command that started the server (recorded), if trnbench did
    log_path: str | None = None  # that server's log, for the last lines of a server that died
    # `--url A,B,...`: data-parallel replicas of one model, sent to round-robin (as AWS's LLMPerf
    # patch does, llm-inference-benchmarking-guide.rst); `url` is the first
    replicas: tuple[str, ...] = ()
    # the launched server (bench.targets.endpoint.session): launch to its first healthy answer,
    # and whether vLLM Neuron's compile cache was warm
    server_start_s: float | None = None
    compile_cache: str | None = None

    def headers(self) -> dict[str, str]:
        """The request headers: the API key from its environment variable, when one is named."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    @property
    def urls(self) -> tuple[str, ...]:
        """Every server the cell's requests go to, in round-robin order."""
        return self.replicas or (self.url,)

    def key(self) -> dict[str, Any]:
        return {"slo": slo_text(self.slo) if self.slo else None,
                "dataset": os.path.basename(self.dataset) if self.dataset else None}

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "tokenizer": self.tokenizer, "dataset": self.dataset,
                "slo": [list(x) for x in self.slo], "api_key_env": self.api_key_env, "launch": self.launch,
                "log_path": self.log_path, "replicas": list(self.replicas),
                "server_start_s": self.server_start_s, "compile_cache": self.compile_cache}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Endpoint:
        return cls(url=str(d["url"]), tokenizer=d.get("tokenizer"), dataset=d.get("dataset"),
                   slo=tuple((str(m), float(v)) for m, v in d.get("slo") or ()), api_key_env=d.get("api_key_env"),
                   launch=d.get("launch"), log_path=d.get("log_path"),
                   replicas=tuple(str(u) for u in d.get("replicas") or ()),
                   server_start_s=d.get("server_start_s"), compile_cache=d.get("compile_cache"))
