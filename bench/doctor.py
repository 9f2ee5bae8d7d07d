"""`trnbench doctor`: one screen that says what a first run will do on this host, and why.

It reads the host the way a run does (DMI product name, /dev/neuron*, neuron-ls in either
JSON form, the SDK probed in a subprocess, package metadata) and, where a Neuron device is
present, compiles and runs tiny-bert on the neuron target. `--bundle FILE` writes a tarball
a user attaches to a report: neuron-ls output in both forms, one neuron-monitor report,
the compiler work directory listing and log of that compile, and `pytest -m neuron`'s
output. tests/stand_ins/ is refreshed from such bundles (tests/stand_ins/README.md).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import targets
from bench.paths import ROOT, cache_dir
from bench.results import env as host_env
from bench.targets.neuron import flags as ncc
from bench.targets.neuron import inventory, sdk

AWS_NEURON_BENCH = ("AWS's own neuron-bench (aws-neuronx-tools: runs a NEFF on a NeuronCore in a loop, "
                    "`neuron-bench exec ...`), a different tool from trnbench")


def _line(what: str, text: str) -> tuple[str, str]:
    return what, text


def facts() -> list[tuple[str, str]]:
    """(what, what it is here) for every line of the screen."""
    out: list[tuple[str, str]] = []
    instance = host_env.instance_type()
    out.append(_line("instance", f"{instance} (DMI product name)" if instance else
                     "not an EC2 Nitro instance (the DMI product name names no instance type)"))
    devices = inventory.device_paths()
    out.append(_line("devices", f"{len(devices)}: {' '.join(devices[:4])}{' ...' if len(devices) > 4 else ''}"
                     if devices else "no /dev/neuron*: no Neuron device (or the driver aws-neuronx-dkms is not loaded)"))
    out.append(_line("neuron-ls", _neuron_ls_line()))
    probe = sdk.probe_sdk()
    out.append(_line("SDK", _sdk_line(probe)))
    version = probe.compiler_version or sdk.compiler_version()
    default = ncc.default_auto_cast(version)
    out.append(_line("compiler", (f"neuronx-cc {version}: default --auto-cast {default}" if version else
                                  "neuronx-cc: not installed (or PyPI's placeholder)")
                     + " (the default is none from Neuron 2.27, matmult before; suites that reproduce "
                       "'Matmult-BF16' figures say --auto-cast=matmult)"))
    nxdi = sdk.nxdi_facts()
    out.append(_line("NxD Inference", f"{nxdi['version'] or '?'} ({nxdi['path']})" if nxdi["path"] else
                     f"not installed (not in DLAMIs/DLCs from Neuron 2.32): {sdk.NXDI_INSTALL}"))
    stubs = sdk.placeholders()
    if stubs:
        out.append(_line("placeholders", f"PyPI placeholder packages, not the SDK: {', '.join(stubs)}; "
                                         f"{sdk.REAL_SDK_HINT}"))
    monitor = inventory.find_tool("neuron-monitor")
    out.append(_line("neuron-monitor", f"{monitor}: runs beside every neuron cell (device latency, errors)"
                     if monitor else "not found: rows get no device latency (aws-neuronx-tools)"))
    aws = inventory.find_tool("neuron-bench")
    out.append(_line("neuron-bench", f"{aws}: {AWS_NEURON_BENCH}" if aws else "not on PATH (AWS's NEFF tool; "
                                                                               "trnbench does not need it)"))
    root = cache_dir() / "artifacts"
    out.append(_line("cache", f"{root} ({_count(root)} artifacts)"))
    for name in targets.names():
        t = targets.get(name)
        a = t.availability()
        compilers, why = t.default_compiler() if a.ok or name == "neuron" else ([t.compilers[0]], "")
        state = "available" if a.ok else ("unavailable (see SDK and devices above)" if name == "neuron"
                                          else f"unavailable: {a.reason}")
        out.append(_line(f"target {name}", f"{state}; default compiler {compilers[0]}" + (f" ({why})" if why else "")))
    return out


def _count(root: Path) -> int:
    try:
        return sum(1 for p in root.glob("*/*") if (p / "key.json").is_file())
    except OSError:
        return 0


def _neuron_ls_line() -> str:
    exe = inventory.find_tool("neuron-ls")
    if exe is None:
        return "not found (aws-neuronx-tools): no NeuronCore inventory, so no neuron cell can be placed"
    inv, why = inventory.inventory_or_reason()
    if inv is None:
        return f"{exe}: {why}"
    free = inv.free_cores()
    busy = inv.busy_summary()
    return (f"{exe}, answered `{inv.format}`: {len(inv.devices)} device(s), {inv.nc_total} NeuronCores at "
            f"LNC {inv.lnc}, {len(free)} free ({inventory.format_cores(free) if free else '-'})"
            + (f"; held: {busy}" if busy else ""))


def _sdk_line(probe: sdk.SdkProbe) -> str:
    reason = sdk.sdk_unavailable_reason(probe)
    if reason:
        return reason
    parts = []
    if probe.xla:
        parts.append(f"torch-neuronx {probe.version} XLA flow (torch_neuronx.trace; in maintenance, "
                     "unsupported for inference on Trn2/Trn3 from Neuron 2.34)")
    if probe.native:
        parts.append("TorchNeuron (device 'neuron', torch.compile backend 'neuron'; public beta from 2.33)")
    return "; ".join(parts)


def check(out_dir: Path, seconds: float = 2.0) -> dict[str, Any]:
    """Compile and run tiny-bert on the neuron target (a device must be here): its row."""
    from bench.execute.sweep import run_plan
    from bench.plan.cell import Measure
    from bench.plan.grid import Plan
    from bench.results.store import read_rows

    measure = Measure(warmup_s=0.5, min_duration_s=seconds, max_duration_s=3 * seconds, min_samples=50)
    plan = Plan.from_grid(models=["tiny-bert"], targets=["neuron"], measure=measure, name="doctor")
    run_dir = run_plan(plan, out=out_dir, progress=False)
    rows = read_rows(run_dir)
    return dict(rows[0], run_dir=str(run_dir)) if rows else {"status": "failed", "error": "no row written"}


WIDTH = 15  # the label column


def render(lines: list[tuple[str, str]]) -> str:
    return "\n".join(f"{w:<{WIDTH}} {t}" for w, t in lines)


def run(bundle: str | None = None, do_check: bool = True) -> int:
    """The command: print the screen; with a device, the tiny-bert check; maybe a bundle."""
    if bundle is not None:
        parent = Path(bundle).expanduser().resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            from bench.errors import UsageError

            raise UsageError(f"--bundle: cannot write into {parent} (no such directory, or not writable)")
    lines = facts()
    print(render(lines), flush=True)
    row: dict[str, Any] | None = None
    status = 0
    with tempfile.TemporaryDirectory(prefix="trnbench-doctor-") as tmp:
        if do_check and inventory.device_paths() and targets.get("neuron").availability().ok:
            print(render([("check", "compiling and running tiny-bert on the neuron target ...")]), flush=True)
            row = check(Path(tmp) / "runs")
            ok = row.get("status") in ("ok", "unstable")
            status = 0 if ok else 1
            figure = (f"p50 {row.get('latency_ms_p50'):.3g} ms, compile {row.get('compile_s') or 0:.1f} s"
                      if ok and row.get("latency_ms_p50") else row.get("error", ""))
            lines.append(_line("check", f"tiny-bert on neuron/{row.get('compiler')}: {row.get('status')}: {figure}"))
            print(render(lines[-1:]))
        elif do_check:
            lines.append(_line("check", "skipped: no Neuron device here (trnbench compile still works with --target)"))
            print(render(lines[-1:]))
        if bundle:
            path = write_bundle(Path(bundle), lines, row)
            print(render([("bundle", str(path))]), file=sys.stderr)
    return status


# -- the bundle ------------------------------------------------------------------------------


def _capture(cmd: list[str], timeout_s: float) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        return f"$ {' '.join(cmd)}\n[exit {proc.returncode}]\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"$ {' '.join(cmd)}\n[could not run: {exc}]\n"


def _monitor_report(timeout_s: float = 10.0) -> str:
    exe = inventory.find_tool("neuron-monitor")
    if exe is None:
        return "neuron-monitor not found\n"
    config = {"period": "1s", "neuron_runtimes": [{"tag_filter": ".*", "metrics": [
        {"type": "neuroncore_counters"}, {"type": "memory_used"}, {"type": "execution_stats"}]}],
        "system_metrics": [{"type": "neuron_hw_counters"}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    try:
        proc = subprocess.Popen([exe, "-c", f.name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout_s
        line = ""
        while time.monotonic() < deadline and not line.strip():
            line = proc.stdout.readline() if proc.stdout else ""
            if not line and proc.poll() is not None:
                break
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        return line or f"[no report within {timeout_s:g} s; exit {proc.returncode}]\n"
    except OSError as exc:
        return f"[could not run neuron-monitor: {exc}]\n"
    finally:
        os.unlink(f.name)


def _artifact_files(row: dict[str, Any] | None) -> dict[str, str]:
    if not row or not row.get("artifact"):
        return {"compile/none.txt": "no compile ran (no device, or the check was skipped)\n"}
    art = Path(str(row["artifact"]))
    listing = []
    for p in sorted(art.rglob("*")):
        if p.is_file():
            listing.append(f"{p.stat().st_size:>12}  {p.relative_to(art)}")
    files = {"compile/listing.txt": "\n".join(listing) + "\n"}
    for name in ("compile.json", "key.json"):
        if (art / name).is_file():
            files[f"compile/{name}"] = (art / name).read_text(encoding="utf-8", errors="replace")
    for log in art.rglob("log-neuron-cc*"):
        files[f"compile/{log.name}"] = log.read_text(encoding="utf-8", errors="replace")[-200_000:]
    return files


def _pytest_neuron(timeout_s: float = 3600.0) -> str:
    tests = ROOT / "tests"
    if not tests.is_dir():
        return "tests not found next to this trnbench (installed from a wheel): run `pytest -m neuron` in a checkout\n"
    return _capture([sys.executable, "-m", "pytest", "-m", "neuron", "-v", "-p", "no:cacheprovider", str(tests)],
                    timeout_s)


def write_bundle(path: Path, lines: list[tuple[str, str]], row: dict[str, Any] | None) -> Path:
    """A .tar.gz of what a maintainer needs to see this host (and to refresh the stand-ins)."""
    exe = inventory.find_tool("neuron-ls") or "neuron-ls"
    files: dict[str, str] = {
        "doctor.txt": render(lines) + "\n",
        "environment.json": json.dumps(host_env.capture(), indent=1, default=str),
        "neuron-ls--output-format-json.txt": _capture([exe, "--output-format", "json"], 60),
        "neuron-ls--json-output.txt": _capture([exe, "--json-output"], 60),
        "neuron-monitor-report.json": _monitor_report(),
        "sdk-probe.json": json.dumps(sdk.probe_sdk().__dict__, indent=1, default=str),
        "check-row.json": json.dumps(row, indent=1, default=str) if row else "null\n",
        "pytest-neuron.txt": _pytest_neuron(),
    }
    files.update(_artifact_files(row))
    tmp = path.with_name(f".{path.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"trnbench-doctor/{name}")
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(path)
    return path
