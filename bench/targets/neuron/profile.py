"""`--profile` on Neuron: the runtime's own capture, in a worker of its own, never with torch.profiler.

The Neuron runtime captures a profile when its environment says so at start-up
(aws-neuron-sdk tools/neuron-explorer/environment-variables.rst):
- `NEURON_RT_INSPECT_ENABLE=1`, the master switch ("Required for all environment-variable-
  based capture");
- `NEURON_RT_INSPECT_OUTPUT_DIR`, where it writes (default `./output`);
- `NEURON_RT_INSPECT_SYSTEM_PROFILE=1`, runtime events (on by default once enabled);
- `NEURON_RT_INSPECT_DEVICE_PROFILE`: `1`/`model` captures "first execution per NEFF per
  core (synchronous). Best for compiled-graph workloads" (a traced model, NxD Inference);
  `session` captures all device activity in one NTFF, and "is required on PJRT runtimes
  (PyTorch native, JAX)" (how-to-profile-workload.rst): TorchNeuron's compilers.
The same page: "Do not set NEURON_RT_INSPECT_ENABLE=1 and use the PyTorch profiling APIs (for
example, torch.profiler) simultaneously. They conflict." So a Neuron cell's pass runs in a
fresh worker whose environment holds these (set before any SDK import, bench.execute.pool),
its capture (`NeuronCapture`) starts no profiler of its own, and the measuring workers never
see the variables. NEURON_RT_INSPECT_NUM_WARMUP, which the issue that asked for this named, is
not documented (not in the docs source or its history at aws-neuron-sdk 81ce03ae) and is not
set. The profiled worker prepares the cell first (load, and the first call that checks its
output), so in model mode the execution captured is that first call, of the same graph as the
pass's requests; in session mode the capture holds it and every request of the pass.

The runtime writes `<instance-id>_pid_<pid>/<timestamp>/` under the output directory: NEFFs,
`.ntff` device traces (one per NeuronCore), `ntrace.pb` / `trace_info.pb` (the system profile)
(how-to-profile-workload.rst, "Expected output"). Once the worker is gone, `summarise` lists
them and asks `neuron-explorer view -d DIR --output-format summary-json` for the summary
("Is summary-json still supported? Yes", tools/neuron-explorer/troubleshooting.rst; its
schema "may change between versions", so only `total_time`, the device's own execution time
in seconds, is read: profile-schema-reference.rst). `neuron-profile`, its predecessor, is no
longer supported from Neuron 2.30.0 (release-notes/components/dev-tools.rst, 2.30.0; first
announced for 2.29): found alone, the row says so.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.targets.profiling import Capture

CAPTURE = "neuron"  # the runtime's output folder inside the cell's profile folder
EXPLORER_TIMEOUT_S = 300.0


def inspect_env(out_dir: Path, session: bool) -> dict[str, str]:
    """The runtime's capture settings for a profiled worker (`session`: a PJRT runtime, TorchNeuron)."""
    return {"NEURON_RT_INSPECT_ENABLE": "1", "NEURON_RT_INSPECT_OUTPUT_DIR": str(Path(out_dir) / CAPTURE),
            "NEURON_RT_INSPECT_SYSTEM_PROFILE": "1", "NEURON_RT_INSPECT_DEVICE_PROFILE": "session" if session else "1"}


class NeuronCapture(Capture):
    """The profiled pass in a worker whose runtime captures by itself: nothing is started here
    (torch.profiler would conflict); the pass is timed, the files come when the worker ends."""

    tool = "neuron runtime (NEURON_RT_INSPECT_*)"

    def __enter__(self) -> NeuronCapture:
        import os

        if os.environ.get("NEURON_RT_INSPECT_ENABLE") != "1":
            raise RuntimeError("a Neuron profiled pass needs NEURON_RT_INSPECT_ENABLE=1 in its worker's environment")
        return self


def summarise(out_dir: Path, summary: dict[str, Any], find_tool) -> dict[str, Any]:
    """What the capture holds, and neuron-explorer's summary of it where the tool is installed."""
    capture = Path(out_dir) / CAPTURE
    files = sorted(p for p in capture.rglob("*") if p.is_file()) if capture.is_dir() else []
    traces = [p for p in files if p.suffix == ".ntff"]
    out = dict(summary, files=[str(p.relative_to(out_dir)) for p in files])
    if not files:
        out["note"] = (f"the Neuron runtime wrote no capture in {capture} (NEURON_RT_INSPECT_ENABLE=1 was set in "
                       "the profiled worker): a runtime older than the inspect variables?")
        return out
    explorer = find_tool("neuron-explorer")
    if explorer is None:
        legacy = find_tool("neuron-profile")
        out["note"] = (f"captured {len(traces)} device trace(s); "
                       + ("only neuron-profile is installed, which is no longer supported from Neuron 2.30.0: "
                          if legacy else "no neuron-explorer on PATH: ")
                       + f"open {capture} with neuron-explorer for the summary")
        return out
    t0 = time.perf_counter()
    try:
        done = subprocess.run([explorer, "view", "-d", str(capture), "--output-format", "summary-json"],
                              capture_output=True, text=True, timeout=EXPLORER_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        out["note"] = f"neuron-explorer view failed: {exc}"
        return out
    out["explorer_s"] = round(time.perf_counter() - t0, 3)
    if done.returncode != 0:
        out["note"] = f"neuron-explorer view exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
        return out
    (Path(out_dir) / "neuron-explorer-summary.json").write_text(done.stdout)
    try:
        parsed = json.loads(done.stdout)
    except ValueError:
        out["note"] = "neuron-explorer's summary-json is not JSON (kept in neuron-explorer-summary.json)"
        return out
    device_s = _total_time(parsed)
    if device_s is not None:
        out["device_ms"] = 1e3 * device_s
        out["note"] = (f"device execution {1e3 * device_s:.4g} ms over the captured executions (the "
                       f"preparation's first call, and in session mode the pass's {summary.get('steps')} requests; "
                       f"neuron-explorer total_time, {len(traces)} device trace(s))")
    return out


def _total_time(parsed: Any) -> float | None:
    """`total_time` (seconds) of the summary: one object, or one per NeuronCore (summed)."""
    found = []
    for e in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(e, dict):
            continue
        v = e.get("total_time")
        if v is None and isinstance(e.get("summary"), dict):
            v = e["summary"].get("total_time")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            found.append(float(v))
    return sum(found) if found else None
