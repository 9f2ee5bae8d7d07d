"""neuron-monitor beside a cell: NeuronCore utilisation and device memory.

neuron-monitor (`-c CONFIG`, one JSON report per line on stdout; neuron_runtime_data[].report
.neuroncore_counters.neuroncores_in_use.<core>.neuroncore_utilization and
.memory_used.neuron_runtime_used_bytes.neuron_device; applications are tagged with
NEURON_PROCESS_TAG and selected with a `tag_filter` regex):
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-sys-tools/neuron-monitor-user-guide.html
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MonitorWatch:
    """neuron-monitor running beside a cell: NeuronCore utilisation and device memory.

    Reports are filtered by neuron-monitor itself with a `tag_filter` regex matching the
    NEURON_PROCESS_TAG the harness gives its workers, so other applications on the host
    do not count.
    """

    exe: str
    tag_regex: str
    period: str = "1s"
    reports: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def start(self) -> MonitorWatch:
        config = {"period": self.period,
                  "neuron_runtimes": [{"tag_filter": self.tag_regex,
                                       "metrics": [{"type": "neuroncore_counters"}, {"type": "memory_used"}]}]}
        fd, self._config_path = tempfile.mkstemp(prefix="trnbench-monitor-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(config, f)
        try:
            self._proc = subprocess.Popen([self.exe, "-c", self._config_path], stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
        except OSError as exc:
            self._proc = None
            self.error = f"cannot start neuron-monitor: {exc}"
            return self
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                self.reports.append(json.loads(line))
            except ValueError:
                continue

    def stop(self) -> dict[str, Any]:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            self._reader.join(timeout=5)
        try:
            os.unlink(self._config_path)
        except (OSError, AttributeError):
            pass
        return summarise_monitor(self.reports) if self.reports else {}


def summarise_monitor(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean NeuronCore utilisation (over reports and the cores in use) and peak device memory."""
    utils: list[float] = []
    peak_mem = 0
    for rep in reports:
        per_report: list[float] = []
        mem = 0
        for rt in rep.get("neuron_runtime_data") or []:
            r = rt.get("report") or {}
            in_use = ((r.get("neuroncore_counters") or {}).get("neuroncores_in_use") or {})
            for core in in_use.values():
                u = core.get("neuroncore_utilization") if isinstance(core, dict) else None
                if isinstance(u, (int, float)):
                    per_report.append(float(u))
            used = ((r.get("memory_used") or {}).get("neuron_runtime_used_bytes") or {})
            if isinstance(used.get("neuron_device"), (int, float)):
                mem += int(used["neuron_device"])
        if per_report:
            utils.append(sum(per_report) / len(per_report))
        peak_mem = max(peak_mem, mem)
    out: dict[str, Any] = {"neuron_monitor_reports": len(reports)}
    if utils:
        out["neuroncore_util_pct"] = round(sum(utils) / len(utils), 2)
    if peak_mem:
        out["neuron_device_mem_gib"] = round(peak_mem / 2**30, 3)
    return out
