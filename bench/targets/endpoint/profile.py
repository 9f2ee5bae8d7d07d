"""`--profile` on an endpoint: the server's own profiler around a short window of requests.

vLLM answers `POST /start_profile` and `POST /stop_profile` only when it was started with a
profiler configured (vllm/entrypoints/serve/profile/api_router.py mounts the routes when
`profiler_config.profiler` is set: `--profiler-config '{"profiler": "torch",
"torch_profiler_dir": DIR}'` from v0.13, docs/contributing/profiling.md; the environment
variable VLLM_TORCH_PROFILER_DIR before, removed since). Otherwise they are 404, and the row
says the server has no profiler. Its workers write torch traces into that directory
(`tensorboard_trace_handler`: `*.pt.trace.json.gz`, vllm/profiler/wrapper.py). vLLM Neuron
mounts the same routes with `--profiler-config '{"profiler": "cuda"}'` and captures with the
Neuron runtime in session mode into `--additional-config '{"neuron_profiler": {"output_dir":
DIR}}'` (default `./neuron_profiles`; vllm-neuron docs/guides/how-to-profile-workloads.md).

The traces are the server's, written where it runs. When trnbench launched it (`--launch`) and
the command names the directory, the files the window produced are copied into the cell's
profile folder (`server/`); otherwise the row says where the server keeps them.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from bench.targets.profiling import Capture, ProfileRefused

WINDOW_REQUESTS = 3  # requests in the profiled window, one after another
WAIT_FOR_TRACES_S = 60.0  # the server writes its traces after /stop_profile returns, maybe later
STOP_TIMEOUT_S = 300.0

_DIRS = (
    (re.compile(r'"torch_profiler_dir"\s*:\s*"([^"]+)"'), "torch"),
    (re.compile(r"VLLM_TORCH_PROFILER_DIR=(\S+)"), "torch"),
    (re.compile(r'"neuron_profiler"\s*:\s*\{[^}]*"output_dir"\s*:\s*"([^"]+)"'), "neuron"),
)


def trace_dir(launch: str | None) -> Path | None:
    """Where the launched server writes its traces, from its command line (None: not named)."""
    if not launch:
        return None
    for pattern, _ in _DIRS:
        found = pattern.search(launch)
        if found:
            return Path(found.group(1).strip("'\""))
    if '"neuron_profiler"' in launch:
        return Path("neuron_profiles")  # vllm-neuron's default output_dir
    return None


class ServerCapture(Capture):
    """/start_profile on every replica, the window, /stop_profile; the new trace files collected."""

    tool = "the server's profiler (/start_profile, /stop_profile)"

    def __init__(self, cell, out_dir: Path) -> None:
        from bench.targets.endpoint.http import root_url

        super().__init__(out_dir)
        self.spec = cell.options
        self.roots = [root_url(u) for u in self.spec.urls]
        self.traces = trace_dir(self.spec.launch)
        self.began = 0.0

    def _post(self, root: str, path: str, timeout_s: float):
        import httpx

        return httpx.post(root + path, headers=self.spec.headers(), timeout=timeout_s)

    def __enter__(self) -> ServerCapture:
        self.began = time.time()
        self.started: list[str] = []
        try:
            for root in self.roots:
                resp = self._post(root, "/start_profile", 30.0)
                if resp.status_code in (404, 405):
                    raise ProfileRefused(
                        f"the server at {root} has no profiler (POST /start_profile: HTTP {resp.status_code}); vLLM "
                        "answers it when started with --profiler-config '{\"profiler\": \"torch\", "
                        "\"torch_profiler_dir\": DIR}' (v0.13 on): add that to --launch")
                resp.raise_for_status()
                self.started.append(root)
        except BaseException:
            self._stop()  # the replicas already profiling stop: none is left capturing the next cells
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop(strict=exc[0] is None)

    def _stop(self, strict: bool = False) -> None:
        """/stop_profile on every replica started, each tried even when one fails."""
        failed = []
        for root in self.started:
            try:
                self._post(root, "/stop_profile", STOP_TIMEOUT_S).raise_for_status()
            except Exception as exc:  # noqa: BLE001 - the others are still stopped
                failed.append(f"{root}: {exc}")
        self.started = []
        if failed and strict:
            raise RuntimeError(f"POST /stop_profile failed: {'; '.join(failed)}")

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        if self.traces is None:
            out["note"] = (f"profiled {self.steps} requests on {len(self.roots)} server(s); the traces are where the "
                           "server's --profiler-config torch_profiler_dir says (not named in a --launch command here)")
            return out
        copied = collect(self.traces, self.began, self.out_dir / "server")
        out["files"] = copied
        out["note"] = (f"profiled {self.steps} requests; {len(copied)} trace file(s) from {self.traces} copied to server/"
                       if copied else f"profiled {self.steps} requests; no new trace file in {self.traces} within "
                                      f"{WAIT_FOR_TRACES_S:g} s")
        return out


def collect(source: Path, since: float, dest: Path) -> list[str]:
    """Copy the files `source` gained since `since` (Unix time) into `dest`, waiting for the
    server to write them; their paths relative to `dest`'s parent."""
    deadline = time.monotonic() + WAIT_FOR_TRACES_S
    while True:
        new = [p for p in source.rglob("*") if p.is_file() and p.stat().st_mtime >= since - 1] if source.is_dir() else []
        if new or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if new:
        time.sleep(1.0)  # a file still being written settles
        new = [p for p in source.rglob("*") if p.is_file() and p.stat().st_mtime >= since - 1]
    copied = []
    for p in sorted(new):
        target = dest / p.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)
        copied.append(str(target.relative_to(dest.parent)))
    return copied
