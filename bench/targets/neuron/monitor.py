"""neuron-monitor beside a cell: the device's own latency, its errors, utilisation, memory.

What it reads (tools/neuron-sys-tools/neuron-monitor-user-guide.rst in aws-neuron/aws-neuron-sdk):
- `-c CONFIG`: {"period": "1s", "neuron_runtimes": [{"tag_filter": REGEX, "metrics": [{"type":
  ...}]}]}; one JSON report per line on stdout; applications are tagged with
  NEURON_PROCESS_TAG and `tag_filter` selects them.
- per runtime, `neuron_runtime_data[].report`:
  - `execution_stats.latency_stats.{total_latency, device_latency}.{p0,p1,p25,p50,p75,p99,p100}`
    in seconds for the executions of the captured period ("total_latency - ... as measured
    by the Neuron Runtime"; "device_latency - ... execution time exclusively on the Neuron
    Device"), `null` when nothing ran; `execution_summary.completed` counts them;
  - `execution_stats.error_summary.{generic, numerical, transient, model, runtime, hardware}`
    (the sample spells it `numerical`, the text `numeric`: both are read);
  - `neuroncore_counters.neuroncores_in_use.<core>.neuroncore_utilization`,
    `memory_used.neuron_runtime_used_bytes.neuron_device`.
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-sys-tools/neuron-monitor-user-guide.html

Reports cover whole periods, so the device latency of a cell pools its warm-up too; the
per-period percentiles are averaged weighted by each period's completed executions (an
approximation of the cell's percentile, stated as such in docs/targets.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MonitorWatch:
    """neuron-monitor running beside a cell.

    Reports are filtered by neuron-monitor itself with a `tag_filter` regex matching the
    NEURON_PROCESS_TAG the harness gives its workers, and again here by each runtime's
    `neuron_runtime_tag`, so other applications on the host never count.
    """

    exe: str
    tag_regex: str
    period: str = "1s"
    reports: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    first_report: threading.Event = field(default_factory=threading.Event)

    def start(self) -> MonitorWatch:
        config = {"period": self.period,
                  "neuron_runtimes": [{"tag_filter": self.tag_regex,
                                       "metrics": [{"type": t} for t in METRICS]}]}
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
            self.first_report.set()

    def stop(self) -> dict[str, Any]:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            if not self.reports and proc.poll() is None:
                # a cell shorter than one period: wait for the report that covers its end
                self.first_report.wait(_seconds(self.period) + 0.5)
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
        return summarise_monitor(self.reports, self.tag_regex) if self.reports else {}


METRICS = ("neuroncore_counters", "memory_used", "execution_stats")


def _seconds(period: str) -> float:
    """'1s' -> 1.0, '500ms' -> 0.5 (neuron-monitor's period strings)."""
    text = period.strip().lower()
    try:
        return float(text[:-2]) / 1e3 if text.endswith("ms") else float(text.rstrip("s"))
    except ValueError:
        return 1.0
ERROR_KINDS = ("generic", "numerical", "transient", "model", "runtime", "hardware")
FAILING_ERRORS = ("hardware", "numerical")  # a result with these is not a result


def _ours(runtime: dict[str, Any], tag_regex: str | None) -> bool:
    tag = runtime.get("neuron_runtime_tag")
    return tag_regex is None or not isinstance(tag, str) or re.match(tag_regex, tag) is not None


def _weighted(pairs: list[tuple[float, float]]) -> float | None:
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total > 0 else None


def summarise_monitor(reports: list[dict[str, Any]], tag_regex: str | None = None) -> dict[str, Any]:
    """Row columns from the reports of this cell's runtimes (others are left out).

    Mean NeuronCore utilisation (over reports and cores in use), peak device memory, the
    runtime's and the device's own p50/p99 latency (ms), and the error counts by kind.
    """
    utils: list[float] = []
    peak_mem = 0
    latency: dict[str, list[tuple[float, float]]] = {}
    errors = dict.fromkeys(ERROR_KINDS, 0)
    executions = 0
    excluded: set[str] = set()
    for rep in reports:
        per_report: list[float] = []
        mem = 0
        for rt in rep.get("neuron_runtime_data") or []:
            if not _ours(rt, tag_regex):
                excluded.add(str(rt.get("neuron_runtime_tag")))
                continue
            r = rt.get("report") or {}
            in_use = ((r.get("neuroncore_counters") or {}).get("neuroncores_in_use") or {})
            for core in in_use.values():
                u = core.get("neuroncore_utilization") if isinstance(core, dict) else None
                if isinstance(u, (int, float)):
                    per_report.append(float(u))
            used = ((r.get("memory_used") or {}).get("neuron_runtime_used_bytes") or {})
            if isinstance(used.get("neuron_device"), (int, float)):
                mem += int(used["neuron_device"])
            stats = r.get("execution_stats") or {}
            done = (stats.get("execution_summary") or {}).get("completed")
            weight = float(done) if isinstance(done, (int, float)) else 1.0
            executions += int(done) if isinstance(done, (int, float)) else 0
            for kind, values in (stats.get("latency_stats") or {}).items():
                if not isinstance(values, dict):
                    continue  # null: no execution in this period
                for q in ("p50", "p99"):
                    if isinstance(values.get(q), (int, float)) and weight > 0:
                        latency.setdefault(f"{kind}_{q}", []).append((float(values[q]) * 1e3, weight))
            for kind, count in (stats.get("error_summary") or {}).items():
                kind = "numerical" if kind == "numeric" else kind
                if isinstance(count, (int, float)):
                    errors[kind] = errors.get(kind, 0) + int(count)
        if per_report:
            utils.append(sum(per_report) / len(per_report))
        peak_mem = max(peak_mem, mem)
    out: dict[str, Any] = {"neuron_monitor_reports": len(reports)}
    if utils:
        out["neuroncore_util_pct"] = round(sum(utils) / len(utils), 2)
    if peak_mem:
        out["neuron_device_mem_gib"] = round(peak_mem / 2**30, 3)
    for key, column in (("device_latency_p50", "device_latency_ms_p50"), ("device_latency_p99", "device_latency_ms_p99"),
                        ("total_latency_p50", "runtime_latency_ms_p50"), ("total_latency_p99", "runtime_latency_ms_p99")):
        value = _weighted(latency.get(key, []))
        if value is not None:
            out[column] = value
    if executions:
        out["device_executions"] = executions
    nonzero = {k: v for k, v in errors.items() if v}
    out["neuron_errors"] = ", ".join(f"{k} {v}" for k, v in nonzero.items())
    failing = {k: v for k, v in nonzero.items() if k in FAILING_ERRORS}
    if failing:
        out["device_error"] = ("neuron-monitor reported " + ", ".join(f"{v} {k} error(s)" for k, v in failing.items())
                               + " during the cell")
    if excluded:
        out["neuron_monitor_excluded"] = ", ".join(sorted(excluded))
    return out
