"""Whether the machine was ours while a cell was measured: other processes' CPU time, steal, load.

`/proc/stat`'s first line counts the host's CPU time in clock ticks by kind (user, nice,
system, idle, iowait, irq, softirq, steal, ...; proc(5)). Over a measurement window the busy
time (user + nice + system + irq + softirq) minus the CPU time this cell's own processes used
(the workers report theirs with getrusage; the orchestrator's is counted too) is what other
processes took: `foreign_cpu_frac` is that over the window's capacity (cores x seconds).
`cpu_steal_frac` is the hypervisor's steal over all ticks (it matters on VMs), and
`load_avg_1m` the kernel's 1-minute load average at the window's end.

A cell (or a round of one) measured while `foreign_cpu_frac` exceeds `BUSY_FRAC` is marked
busy: "host busy: other processes used 1.8 of 2 cores".
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from typing import Any

BUSY_FRAC = 0.20  # other processes using over a fifth of the host: the figure is not this cell's
STEAL_FRAC = 0.10  # the hypervisor took over a tenth of the ticks
BUSY_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _proc_stat() -> dict[str, int] | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            first = f.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    return dict(zip(BUSY_FIELDS, (int(v) for v in first[1:1 + len(BUSY_FIELDS)])))


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Window:
    """Host counters at the start of a measurement; `finish` gives the row's columns."""

    stat: dict[str, int] | None
    wall: float
    own_cpu_s: float

    @classmethod
    def start(cls) -> Window:
        return cls(_proc_stat(), time.monotonic(), _own_cpu_s())

    def finish(self, workers_cpu_s: float | None) -> dict[str, Any]:
        after = _proc_stat()
        wall = time.monotonic() - self.wall
        out: dict[str, Any] = {"load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
        if self.stat is None or after is None or wall <= 0:
            return out
        d = {k: after[k] - self.stat[k] for k in BUSY_FIELDS}
        ticks = sum(d.values())
        busy_s = (d["user"] + d["nice"] + d["system"] + d["irq"] + d["softirq"]) / CLK_TCK
        ours = (workers_cpu_s or 0.0) + (_own_cpu_s() - self.own_cpu_s)
        cpus = _cpus()
        out["foreign_cpu_frac"] = round(min(1.0, max(0.0, (busy_s - ours) / (cpus * wall))), 3)
        out["cpu_steal_frac"] = round(d["steal"] / ticks, 3) if ticks > 0 else 0.0
        out["host_cpus"] = cpus
        return out


def busy_reason(fields: dict[str, Any]) -> str:
    """'host busy: other processes used 1.8 of 2 cores' (or steal), or '' when the host was ours."""
    frac, cpus = fields.get("foreign_cpu_frac"), fields.get("host_cpus") or _cpus()
    reasons = []
    if isinstance(frac, (int, float)) and frac > BUSY_FRAC:
        reasons.append(f"host busy: other processes used {frac * cpus:.1f} of {cpus} cores")
    steal = fields.get("cpu_steal_frac")
    if isinstance(steal, (int, float)) and steal > STEAL_FRAC:
        reasons.append(f"the hypervisor stole {steal:.0%} of the CPU time")
    return "; ".join(reasons)
