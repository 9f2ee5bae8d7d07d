"""The processes of a server on this host, found from its listening port, and their CPU time.

A server under test on the same host as the client (a `transformers serve` in CI, a vLLM
beside its benchmark on an inf2) is part of what is measured, not a neighbour: its CPU time
must not count as `foreign_cpu_frac`. Linux only: the port's listening socket is found in
/proc/net/tcp{,6} (state 0A, LISTEN), its owner by the `socket:[inode]` links under
/proc/<pid>/fd, and the server's whole tree by the parent ids in /proc/<pid>/stat. Processes
of other users cannot be read; then nothing is found and the figure stays as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

LISTEN = "0A"


def listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == LISTEN and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    return inodes


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def owners(inodes: set[str]) -> set[int]:
    targets = {f"socket:[{i}]" for i in inodes}
    found = set()
    for pid in _pids():
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    found.add(pid)
                    break
        except OSError:
            continue
    return found


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def tree(roots: set[int]) -> set[int]:
    """`roots` and every descendant."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        f = _stat(pid)
        if f:
            children.setdefault(int(f[1]), []).append(pid)
    out, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(children.get(p, []))
    return out


def server_pids(url: str) -> set[int]:
    """The processes of the server behind a localhost URL (empty elsewhere, or when unreadable)."""
    parts = urlsplit(url)
    if (parts.hostname or "") not in ("localhost", "127.0.0.1", "::1") or not os.path.isdir("/proc/net"):
        return set()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    roots = owners(listening_inodes(port)) - {os.getpid()}
    return tree(roots) if roots else set()


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU time of these processes so far (those still alive)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        f = _stat(pid)
        if f:
            total += int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)
    return total / tick
