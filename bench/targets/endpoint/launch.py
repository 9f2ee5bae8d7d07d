"""`--launch CMD`: start the server under test as part of the run, and stop it after.

The command runs through the shell in a session (and process group) of its own, its output
in `server.log` in the run directory. Readiness is a 200 from `/health` (vLLM, TGI) or from
`<base>/models` (any OpenAI-compatible server), polled until `timeout_s`; a command that
exits first is an error with the last lines of its log. `stop` sends SIGTERM to the whole
group (vLLM's engine and Neuron runtime processes are children of the API server), then
SIGKILL after a grace period, so nothing outlives the run.

vLLM Neuron compiles the model as it starts: launch to the first healthy answer
(`server_start_s`) is compile plus load. Its compiler waits `VLLM_NEURON_COMPILATION_TIMEOUT`
seconds (default 600, vllm_neuron/envs.py; its quick start sets 1200 for a 20B model), so
when that is set (in the command or here) and --launch-timeout is not, the wait is that plus
LOAD_MARGIN_S. Its compiled graphs are cached in `$VLLM_CACHE_ROOT/neuron/compile_cache/<hash>/`
(default `~/.cache/vllm/neuron/compile_cache`; vllm-neuron docs/design/compilation/
compilation_cache.md): listed before the launch and after it, a cache that gained no entry
was warm (`server_compile_cache`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from bench.errors import UsageError

GRACE_S = 10.0
POLL_S = 0.25
DEFAULT_TIMEOUT_S = 600.0
LOAD_MARGIN_S = 300.0  # beyond vLLM Neuron's compile timeout: loading the model, starting the API


def _assigned(command: str, name: str) -> str | None:
    """NAME's value where the command sets it (`NAME=value cmd`, `export NAME=value; cmd`), else ours."""
    import re

    found = re.search(rf"(?:^|[\s;]){name}=([^\s;]+)", command)
    return os.path.expandvars(found.group(1).strip("'\"")) if found else os.environ.get(name)


def timeout_for(command: str, given: float | None) -> tuple[float, str]:
    """How long to wait for the launched server, and why: --launch-timeout, else vLLM Neuron's
    compile timeout plus LOAD_MARGIN_S when set, else DEFAULT_TIMEOUT_S."""
    if given is not None:
        return float(given), "--launch-timeout"
    compile_s = _assigned(command, "VLLM_NEURON_COMPILATION_TIMEOUT")
    try:
        if compile_s is not None and float(compile_s) > 0:
            return float(compile_s) + LOAD_MARGIN_S, f"VLLM_NEURON_COMPILATION_TIMEOUT={compile_s} + {LOAD_MARGIN_S:g} s"
    except ValueError:
        pass
    return DEFAULT_TIMEOUT_S, "the default"


def compile_cache(command: str) -> Path:
    """vLLM Neuron's compile cache for this command: $VLLM_CACHE_ROOT/neuron/compile_cache."""
    root = _assigned(command, "VLLM_CACHE_ROOT") or os.path.join(os.path.expanduser("~"), ".cache", "vllm")
    return Path(os.path.expanduser(root)) / "neuron" / "compile_cache"


def cache_entries(path: Path) -> set[str] | None:
    """The cache's entries (one folder per compiled graph's hash), None when there is no cache."""
    try:
        return {p.name for p in path.iterdir()}
    except OSError:
        return None


def cache_state(before: set[str] | None, after: set[str] | None) -> str | None:
    """'warm (N entries, none added)' / 'cold (N added)'; None where no vLLM Neuron cache exists."""
    if not after:
        return None if before is None else "empty (nothing cached)"
    added = len(after - (before or set()))
    return f"cold ({added} entries added)" if added else f"warm ({len(after)} entries, none added)"


class LaunchedServer:
    def __init__(self, command: str, base_url: str, log_path: Path, timeout_s: float = 600.0, timeout_why: str = ""):
        self.command = command
        self.base_url = base_url.rstrip("/")
        self.log_path = Path(log_path)
        self.timeout_s = timeout_s
        self.timeout_why = timeout_why  # where the wait came from (timeout_for), said when it runs out
        self.proc: subprocess.Popen | None = None
        self.ready_s: float | None = None  # launch to the first healthy answer (compile + load)

    def __enter__(self) -> LaunchedServer:
        self.start()
        try:
            self.ready_s = self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            # the user's own command line (--launch), as they would type it: env assignments, quoting
            self.proc = subprocess.Popen(self.command, shell=True, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self) -> float:
        """Seconds until the server answered; UsageError when it exits or never answers."""
        import httpx

        t0 = time.monotonic()
        from bench.targets.endpoint.http import root_url

        urls = (root_url(self.base_url) + "/health", self.base_url + "/models")
        with httpx.Client(timeout=2.0) as client:
            while True:
                if not self.alive():
                    code = self.proc.returncode if self.proc else None
                    raise UsageError(f"--launch: the server exited (status {code}) before it answered; "
                                     f"log {self.log_path}: {self.tail(3) or '(empty)'}")
                for url in urls:
                    try:
                        if client.get(url).status_code == 200:
                            return time.monotonic() - t0
                    except httpx.HTTPError:
                        pass
                if time.monotonic() - t0 > self.timeout_s:
                    raise UsageError(f"--launch: no answer from {urls[0]} or {urls[1]} within {self.timeout_s:g} s"
                                     f"{f' ({self.timeout_why})' if self.timeout_why else ''}; "
                                     f"log {self.log_path}: {self.tail(3) or '(empty)'}")
                time.sleep(POLL_S)

    def tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL after GRACE_S."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        self.proc.wait()


def log_tail(path: str | Path, lines: int = 20) -> str:
    """The last non-empty lines of a log, joined with ' | ' ('' when it cannot be read)."""
    try:
        text = Path(path).read_bytes()[-20000:].decode("utf-8", "replace")
    except OSError:
        return ""
    return " | ".join([line.strip() for line in text.strip().splitlines() if line.strip()][-lines:])
