"""`--launch CMD`: start the server under test as part of the run, and stop it after.

The command runs through the shell in a session (and process group) of its own, its output
in `server.log` in the run directory. Readiness is a 200 from `/health` (vLLM, TGI) or from
`<base>/models` (any OpenAI-compatible server), polled until `timeout_s`; a command that
exits first is an error with the last lines of its log. `stop` sends SIGTERM to the whole
group (vLLM's engine and Neuron runtime processes are children of the API server), then
SIGKILL after a grace period, so nothing outlives the run.
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


class LaunchedServer:
    def __init__(self, command: str, base_url: str, log_path: Path, timeout_s: float = 600.0):
        self.command = command
        self.base_url = base_url.rstrip("/")
        self.log_path = Path(log_path)
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LaunchedServer:
        self.start()
        try:
            self.wait_ready()
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
                    raise UsageError(f"--launch: no answer from {urls[0]} or {urls[1]} within {self.timeout_s:g} s; "
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
