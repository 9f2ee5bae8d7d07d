"""A cell's profiled pass, worker side: one untimed pass of its requests under a profiler.

`--profile` (`[measure] profile = true`) adds one pass after a cell's measurement; nothing
measured comes from it. Where the pass's files go is the orchestrator's (`profiles/<cell_id>/`
in the run directory); what captures it is the target's (`Target.profiler`):

- `TorchCapture` (cpu, cuda): `torch.profiler.profile` around the pass. It writes the
  Chrome/Perfetto trace, gzipped (`trace.json.gz`; Perfetto and chrome://tracing open it as
  it is), every operator's totals (`ops.csv`, from `key_averages()`), and `summary.json`.
  An operator's share is its self time (device time on CUDA) over the pass's wall time, the
  requests' own time: what is left is Python and the framework between operators.
- A target whose runtime captures by itself (Neuron: NEURON_RT_INSPECT_*, set in a process of
  its own) gives its own capture; see bench.targets.neuron.profile.

What a verb runs in the pass is the verb's (`Requests.profile_pass`): a few inference calls,
one generation, one optimizer step, a short window of streamed requests.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

TOP_OPS = 5  # operators a row names
REQUEST_EVENT = "trnbench.request"  # each request of the pass, as a user-annotated range
PASS_MIN_S = 0.25  # inference calls: at least this long a pass (and at least PASS_MIN_CALLS calls)
PASS_MIN_CALLS = 3
PASS_MAX_CALLS = 20  # ... and at most this many (a trace of a few MB at most)


class ProfileRefused(RuntimeError):
    """This cell has no profiled pass (said in the row, not a failure)."""


class Capture:
    """What captures a profiled pass (a context manager around it): the pass's files go in
    `out_dir`; `run_pass` sets `steps` (the requests made) and `wall_s`; `summary` says what it
    captured. A capture that starts nothing of its own leaves `__enter__`/`__exit__` as they are."""

    tool = ""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.steps = 0
        self.wall_s = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def request(self):
        """Around one request (a range in a trace, where the capture has one)."""
        return contextlib.nullcontext()

    def summary(self) -> dict[str, Any]:
        """The tool, the requests made and what the pass took (`step_ms`: a request under it)."""
        return {"tool": self.tool, "steps": self.steps, "pass_s": self.wall_s,
                "step_ms": 1e3 * self.wall_s / max(self.steps, 1)}


class TorchCapture(Capture):
    """torch.profiler around the pass (see the module docstring). `device`: 'cpu' or 'cuda'."""

    tool = "torch.profiler"

    def __init__(self, out_dir: Path, device: str = "cpu") -> None:
        super().__init__(out_dir)
        self.device = device
        self.prof = None

    def __enter__(self) -> TorchCapture:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device == "cuda" else [])
        self.prof = profile(activities=activities, record_shapes=False, with_stack=False)
        with quiet_stderr():
            self.prof.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        with quiet_stderr():
            self.prof.__exit__(*exc)

    def request(self):
        """A range around one request (its wall time is the share's denominator)."""
        from torch.profiler import record_function

        return record_function(REQUEST_EVENT)

    def summary(self) -> dict[str, Any]:
        """Write the trace, the operator table and summary.json; return the summary."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        raw = self.out_dir / ".trace.json"
        self.prof.export_chrome_trace(str(raw))
        with open(raw, "rb") as src, gzip.open(self.out_dir / "trace.json.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        raw.unlink()
        ops = operator_table(self.prof.key_averages(), self.device)
        wall_us = request_wall_us(ops) or self.wall_s * 1e6
        write_ops(self.out_dir / "ops.csv", ops, wall_us)
        summary = {"tool": self.tool, "device": self.device, "steps": self.steps, "pass_s": self.wall_s,
                   "step_ms": wall_us / 1e3 / max(self.steps, 1), "top_ops": top_ops(ops, wall_us, self.steps),
                   "ops_share": ops_share(ops, wall_us), "files": ["trace.json.gz", "ops.csv"]}
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary


def operator_table(averages, device: str) -> list[dict[str, Any]]:
    """One dict per entry of key_averages: name, calls, self CPU and self device time (us), and
    its kind. With CUDA activity a kernel is an entry of its own (device_type CUDA) *and* its time
    is in the self device time of the operator that launched it, and a record_function range
    (`is_user_annotation`) spans its operators on the device too: only operators (`op`) count
    there, or the kernels' time would count twice."""
    out = []
    for e in averages:
        device_us = getattr(e, "self_device_time_total", None)
        if device_us is None:  # torch before 2.4
            device_us = getattr(e, "self_cuda_time_total", 0.0)
        on_cpu = str(getattr(e, "device_type", "CPU")).endswith("CPU")
        kind = "kernel" if not on_cpu else ("annotation" if getattr(e, "is_user_annotation", False) else "op")
        out.append({"op": e.key, "calls": int(e.count), "self_cpu_us": float(e.self_cpu_time_total),
                    "self_device_us": float(device_us or 0.0), "total_cpu_us": float(e.cpu_time_total),
                    "on": "device" if device != "cpu" and (device_us or 0) > 0 else "cpu", "kind": kind})
    return out


def _counted(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries whose self time is a share of the pass: on a device the operators alone (see
    operator_table); on the CPU every entry but the requests' own ranges (self time never overlaps)."""
    if _on_device(ops):
        return [o for o in ops if o.get("kind", "op") == "op" and o["on"] == "device"]
    return [o for o in ops if o["op"] != REQUEST_EVENT]


def request_wall_us(ops: list[dict[str, Any]]) -> float:
    """The requests' wall time inside the pass (their ranges' total), 0 when none was marked."""
    return sum(o["total_cpu_us"] for o in ops if o["op"] == REQUEST_EVENT)


def _on_device(ops: list[dict[str, Any]]) -> bool:
    """Whether the pass ran kernels on a device (CUDA): then operators rank by device time."""
    return any(o["on"] == "device" for o in ops)


def _self_us(op: dict[str, Any], on_device: bool) -> float:
    return op["self_device_us"] if on_device else op["self_cpu_us"]


def top_ops(ops: list[dict[str, Any]], wall_us: float, steps: int = 1, n: int = TOP_OPS) -> list[dict[str, Any]]:
    """The `n` operators with the most self time, each with its share of the pass's wall time,
    its self time and its calls per step."""
    steps = max(1, steps)
    dev = _on_device(ops)
    named = [o for o in _counted(ops) if not o["op"].startswith("ProfilerStep")]
    named.sort(key=lambda o: _self_us(o, dev), reverse=True)
    return [{"op": o["op"], "share": round(_self_us(o, dev) / wall_us, 4) if wall_us > 0 else None,
             "self_ms": round(_self_us(o, dev) / 1e3 / steps, 4), "calls": round(o["calls"] / steps, 2),
             "on": o["on"]} for o in named[:n]]


def ops_share(ops: list[dict[str, Any]], wall_us: float) -> float | None:
    """Every operator's self time together over the pass's wall time: the rest is Python and the
    framework between operators, and the profiler's own cost."""
    if wall_us <= 0:
        return None
    dev = _on_device(ops)  # CUDA: the kernels' time, by the operators that launched them; else the CPU's
    return round(sum(_self_us(o, dev) for o in _counted(ops)) / wall_us, 4)


def quiet_stderr():
    """Kineto (torch 2.13) prints `profiler_start` / `profiler_stop` lines on stderr at a level
    KINETO_LOG_LEVEL does not silence; they would land in the middle of the progress bar."""
    import contextlib
    import sys

    @contextlib.contextmanager
    def quiet():
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):
            yield
            return
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)

    return quiet()


def write_ops(path: Path, ops: list[dict[str, Any]], wall_us: float) -> None:
    """Every operator, the most self time first, with its share (what `compare` reads)."""
    dev = _on_device(ops)
    counted = {id(o) for o in _counted(ops)}
    rows = sorted((o for o in ops if o["op"] != REQUEST_EVENT), key=lambda o: _self_us(o, dev), reverse=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["op", "calls", "self_cpu_us", "self_device_us", "on", "kind", "share"])
        for o in rows:  # a share only where it counts (kernels and ranges on a device: blank)
            share = f"{_self_us(o, dev) / wall_us:.6f}" if wall_us > 0 and id(o) in counted else ""
            w.writerow([o["op"], o["calls"], f"{o['self_cpu_us']:.3f}", f"{o['self_device_us']:.3f}", o["on"],
                        o.get("kind", "op"), share])


def calls_for(latency_s: float) -> int:
    """How many inference calls a pass makes: PASS_MIN_S worth, within the call bounds."""
    if latency_s <= 0:
        return PASS_MAX_CALLS
    return int(min(PASS_MAX_CALLS, max(PASS_MIN_CALLS, -(-PASS_MIN_S // latency_s))))


def run_pass(capture, requests, ctx, cell) -> dict[str, Any]:
    """The verb's pass inside `capture`, timed as a whole (pass_s: what `--profile` costs a cell,
    with the profiler's own overhead)."""
    t0 = time.perf_counter()
    with capture:
        capture.steps = requests.profile_pass(ctx, cell, capture)
    capture.wall_s = time.perf_counter() - t0
    return capture.summary()


def clear(out_dir: Path) -> None:
    """An earlier attempt's files (a run killed in its profiled pass, resumed) go first."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.makedirs(out_dir, exist_ok=True)
