"""Endpoint cells around a run (EndpointTarget.session): start the `--launch` server, check every server answers and
serves its model, and keep the server's log in the run directory.

Nothing is written before the checks pass (a URL that does not answer, a model the server
does not list: one line, exit 2). The launched server's log starts beside the run directory
(`<out>/.<run_id>.server.log`) and moves into it as `server.log` once the run exists; the
server writes through its open file, so the move loses nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from bench.plan.cell import Cell

LOG_NAME = "server.log"


@contextlib.contextmanager
def serving(cells: list[Cell], out: Path, run_id: str, launch_timeout_s: float | None = None) -> Iterator[list[Cell]]:
    """The cells (knowing where the server's log will be, how long it took to start, whether its
    compile cache was warm) while the server runs; the launched server is stopped, its whole
    process group, on the way out. `launch_timeout_s` None: bench.targets.endpoint.launch.timeout_for."""
    from bench.targets.endpoint import launch, prompts
    from bench.targets.endpoint.http import preflight

    specs = {c.options for c in cells if c.options is not None}
    with contextlib.ExitStack() as stack:
        if not specs:
            yield cells
            return
        final_log = Path(out) / run_id / LOG_NAME
        started: dict[str, dict] = {}
        for command in sorted({s.launch for s in specs if s.launch}):
            url = next(s.url for s in specs if s.launch == command)
            early = Path(out) / f".{run_id}.server.log"
            timeout_s, why = launch.timeout_for(command, launch_timeout_s)
            server = launch.LaunchedServer(command, url, early, timeout_s=timeout_s, timeout_why=why)
            cache = launch.compile_cache(command)
            before = launch.cache_entries(cache)
            try:
                stack.enter_context(server)
            except BaseException:
                early.unlink(missing_ok=True)
                raise
            stack.callback(_adopt, early, final_log)
            started[command] = {"server_start_s": round(server.ready_s, 3) if server.ready_s is not None else None,
                                "compile_cache": launch.cache_state(before, launch.cache_entries(cache))}
        for spec, model in sorted({(c.options, c.model_name) for c in cells if c.options},
                                  key=lambda x: (x[0].url, x[1])):
            for url in spec.urls:  # every replica answers and serves the model
                preflight(url, model, spec.api_key_env)
            prompts.resolve(spec, model)  # local or the server's /tokenize: else one line and exit 2 now
        yield [replace(c, options=replace(c.options, log_path=str(final_log), **started[c.options.launch]))
               if c.options and c.options.launch else c for c in cells]


def adopt_log(out: Path, run_id: str) -> None:
    """Move the launched server's early log into the run directory, now that it exists."""
    _adopt(Path(out) / f".{run_id}.server.log", Path(out) / run_id / LOG_NAME)


def _adopt(early: Path, final: Path) -> None:
    if early.exists() and final.parent.is_dir():
        os.replace(early, final)
    elif early.exists():
        early.unlink()  # the run was never created: nothing is left behind
