"""Neuron host facts without importing the SDK: devices, neuron-ls, neuron-monitor, SDK probe.

Everything here runs in the orchestrator (or in a worker for `describe`) and never
imports torch_neuronx in-process: the SDK is probed in a short-lived subprocess, so the
orchestrator never initialises a Neuron runtime (DESIGN.md: never fork after that).

Documentation this module follows (checked against the aws-neuron-sdk sources):
- neuron-ls, `--json-output` / `-j` (a JSON list, one object per device: neuron_device,
  bdf, cpu_affinity, numa_node, connected_to, nc_count, logical_neuroncore_config (trn2),
  memory_size (bytes), neuroncore_ids, neuron_processes [{pid, command,
  neuron_runtime_version}]):
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-sys-tools/neuron-ls.html
  (Neuron 2.34 announces a new `--output-format json`; see
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/about-neuron/announcements/neuron2.x/announce-intent-eos-neuron-ls-json.html)
- neuron-monitor (`-c CONFIG`, one JSON report per line on stdout; neuron_runtime_data[].report
  .neuroncore_counters.neuroncores_in_use.<core>.neuroncore_utilization and
  .memory_used.neuron_runtime_used_bytes.neuron_device; applications are tagged with
  NEURON_PROCESS_TAG and selected with a `tag_filter` regex):
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-sys-tools/neuron-monitor-user-guide.html
- neuronx-cc flags (--target inf2|trn1|trn1n|trn2, --model-type, --auto-cast none|matmult|all,
  --auto-cast-type bf16|fp16|tf32|fp8_e4m3, --optlevel/-O 1|2|3, --logical-nc-config/-lnc 1|2
  on trn2; default --auto-cast is `none` since Neuron 2.27):
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/compiler/neuronx-cc/api-reference-guide/neuron-compiler-cli-reference-guide.html
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/release-notes/2.27.0/compiler.html
- Logical NeuronCore config (the runtime's NEURON_LOGICAL_NC_CONFIG must equal the compiler's -lnc):
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/about-neuron/arch/neuron-features/logical-neuroncore-config.html

Test hooks (documented in tests/stand_ins/README.md): TRNBENCH_DEV_GLOB replaces the
`/dev/neuron*` pattern; fake `neuron-ls` / `neuron-monitor` executables are found on PATH.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from bench.errors import UsageError

NEURON_PIP_REPO = "https://pip.repos.neuron.amazonaws.com"
REAL_SDK_HINT = (f"the real SDK comes from the Neuron pip repository "
                 f"(pip install --extra-index-url {NEURON_PIP_REPO} torch-neuronx neuronx-cc) "
                 "or a Neuron DLAMI / Deep Learning Container")
TOOL_DIRS = ("/opt/aws/neuron/bin",)
# Which instance families each neuronx-cc --target runs on.
TARGET_FAMILIES = {"inf2": ("inf2",), "trn1": ("trn1", "trn1n"), "trn1n": ("trn1n",), "trn2": ("trn2", "trn2u")}
DEVICE_NAMES = {"inf2": "AWS Inferentia2", "trn1": "AWS Trainium", "trn1n": "AWS Trainium",
                "trn2": "AWS Trainium2", "trn2u": "AWS Trainium2", "trn3": "AWS Trainium3"}


# -- devices and tools --------------------------------------------------------------------


def device_paths() -> list[str]:
    """The Neuron device nodes (`/dev/neuron0`, ...); TRNBENCH_DEV_GLOB overrides the pattern."""
    return sorted(glob.glob(os.environ.get("TRNBENCH_DEV_GLOB", "/dev/neuron*")))


def find_tool(name: str) -> str | None:
    """A Neuron tool on PATH, else in /opt/aws/neuron/bin (where the aws-neuronx-tools package puts it)."""
    found = shutil.which(name)
    if found:
        return found
    for d in TOOL_DIRS:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def instance_family(instance_type: str) -> str:
    """'inf2.xlarge' -> 'inf2'; '' when unknown."""
    return instance_type.split(".", 1)[0].lower() if "." in instance_type else ""


# -- compiler flags -------------------------------------------------------------------------

# canonical flag -> (spellings, allowed values or None for "an integer")
_FLAGS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "target": (("--target",), ("inf2", "trn1", "trn1n", "trn2")),
    "model-type": (("--model-type",), ("generic", "transformer", "unet-inference")),
    "auto-cast": (("--auto-cast",), ("none", "matmult", "all")),
    "auto-cast-type": (("--auto-cast-type",), ("bf16", "fp16", "tf32", "fp8_e4m3")),
    "optlevel": (("--optlevel", "-O"), ("1", "2", "3")),
    "logical-nc-config": (("--logical-nc-config", "-lnc"), ("1", "2")),
}


def parse_compiler_args(args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The documented neuronx-cc flags in `args` -> {canonical name: value}; validates their values.

    Accepts `--flag=value`, `--flag value`, `-O2`, `-O 2`, `-lnc=2`, `-lnc 2`. Later flags win,
    as in neuronx-cc. Flags it does not know are passed through untouched.
    """
    out: dict[str, str] = {}
    items = list(args)
    i = 0
    while i < len(items):
        token = items[i]
        matched = False
        for canon, (spellings, allowed) in _FLAGS.items():
            for sp in spellings:
                value = None
                if token == sp:
                    if i + 1 >= len(items):
                        raise UsageError(f"compiler flag {sp} needs a value")
                    value = items[i + 1]
                    i += 1
                elif token.startswith(sp + "="):
                    value = token[len(sp) + 1:]
                elif sp == "-O" and re.fullmatch(r"-O\d", token):
                    value = token[2:]
                if value is None:
                    continue
                if allowed and value not in allowed:
                    hint = " (neuronx-cc spells it 'matmult')" if canon == "auto-cast" and value == "matmul" else ""
                    raise UsageError(f"compiler flag {sp}: {value!r} is not one of {', '.join(allowed)}{hint}")
                out[canon] = value
                matched = True
                break
            if matched:
                break
        i += 1
    if "logical-nc-config" in out and out.get("target", "trn2") != "trn2":
        raise UsageError(f"--logical-nc-config applies to --target=trn2 only (got --target={out['target']})")
    return out


# -- neuron-ls ------------------------------------------------------------------------------


@dataclass
class Inventory:
    """What `neuron-ls --json-output` says about this host, at the runtime's current LNC."""

    devices: list[dict[str, Any]]
    own_pids: frozenset[int] = frozenset()

    @property
    def lnc(self) -> int:
        return int(self.devices[0].get("logical_neuroncore_config") or 1) if self.devices else 1

    @property
    def nc_total(self) -> int:
        return sum(int(d.get("nc_count") or 0) for d in self.devices)

    @property
    def memory_bytes(self) -> int:
        return sum(int(d.get("memory_size") or 0) for d in self.devices)

    def core_ids(self, device: dict[str, Any], lnc: int | None = None) -> list[int]:
        """A device's NeuronCore ids (NEURON_RT_VISIBLE_CORES numbering), at `lnc` if given."""
        n = int(device.get("nc_count") or 0)
        ids = [int(x) for x in device.get("neuroncore_ids") or []]
        if lnc is None or lnc == self.lnc:
            if not ids:  # older neuron-ls: no neuroncore_ids; devices are numbered in order
                first = sum(int(d.get("nc_count") or 0) for d in self.devices
                            if int(d.get("neuron_device", 0)) < int(device.get("neuron_device", 0)))
                ids = list(range(first, first + n))
            return ids
        per = n * self.lnc // lnc  # the same physical cores grouped differently
        d = int(device.get("neuron_device", 0))
        return list(range(d * per, (d + 1) * per))

    def holders(self, device: dict[str, Any]) -> list[dict[str, Any]]:
        """Processes (other than this harness and its workers) holding the device."""
        return [p for p in device.get("neuron_processes") or []
                if int(p.get("pid") or -1) not in self.own_pids]

    def free_cores(self, lnc: int | None = None) -> list[int]:
        """Cores on devices no other process holds.

        neuron-ls reports processes per device, not per core, so a device with any other
        process on it counts as taken: the conservative reading.
        """
        out: list[int] = []
        for d in self.devices:
            if not self.holders(d):
                out.extend(self.core_ids(d, lnc))
        return sorted(out)

    def busy_summary(self) -> str:
        parts = []
        for d in self.devices:
            for p in self.holders(d):
                cmd = (p.get("command") or "").strip() or "?"
                parts.append(f"device {d.get('neuron_device')} (cores {_fmt_ids(self.core_ids(d))}) "
                             f"by pid {p.get('pid')} ({cmd[:60]})")
        return "; ".join(parts)


def _fmt_ids(ids: list[int]) -> str:
    return format_cores(ids) if ids else "-"


def format_cores(ids: list[int]) -> str:
    """[3] -> '3'; [2, 3] -> '2-3' (NEURON_RT_VISIBLE_CORES takes a core or a range)."""
    ids = sorted(ids)
    if len(ids) == 1:
        return str(ids[0])
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]}-{ids[-1]}"
    return ",".join(str(i) for i in ids)


def parse_neuron_ls(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    if isinstance(data, dict):  # tolerate a wrapper object ({"neuron_devices": [...]}) in newer tools
        data = data.get("neuron_devices") or data.get("devices") or []
    if not isinstance(data, list):
        raise ValueError("expected a JSON list of devices")
    return [d for d in data if isinstance(d, dict) and isinstance(d.get("nc_count"), int)]


def own_pids() -> frozenset[int]:
    """This process and its direct children (the harness's own workers hold devices too)."""
    me = os.getpid()
    pids = {me}
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                        stat = f.read()
                    ppid = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if ppid == me:
                    pids.add(int(entry))
    except OSError:
        pass
    return frozenset(pids)


_LS_CACHE: dict[str, tuple[float, list[dict[str, Any]]]] = {}
LS_TTL_S = 5.0


def neuron_ls(fresh: bool = False) -> Inventory:
    """Run `neuron-ls --json-output`; raises RuntimeError with the reason when it cannot."""
    exe = find_tool("neuron-ls")
    if exe is None:
        raise RuntimeError("neuron-ls not found (it comes with the aws-neuronx-tools package)")
    now = time.monotonic()
    cached = _LS_CACHE.get(exe)
    if cached and not fresh and now - cached[0] < LS_TTL_S:
        devices = cached[1]
    else:
        try:
            proc = subprocess.run([exe, "--json-output"], capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError(f"neuron-ls failed: {exc}") from None
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(f"neuron-ls --json-output exited {proc.returncode}: {msg[0] if msg else ''}")
        try:
            devices = parse_neuron_ls(proc.stdout)
        except ValueError as exc:
            raise RuntimeError(f"cannot read neuron-ls --json-output: {exc}") from None
        _LS_CACHE[exe] = (now, devices)
    return Inventory(devices=devices, own_pids=own_pids())


def try_neuron_ls() -> Inventory | None:
    try:
        inv = neuron_ls()
    except RuntimeError:
        return None
    return inv if inv.devices else None


# -- the SDK, probed in a subprocess -------------------------------------------------------

_PROBE = r"""
import json, sys
out = {"import_ok": False, "error": "", "error_type": "", "xla": False, "native": False,
       "trace_params": [], "data_parallel": False, "version": ""}
try:
    import torch
except BaseException as exc:
    out["error_type"], out["error"] = type(exc).__name__, "import torch: " + str(exc)
    print(json.dumps(out)); sys.exit(0)
try:
    import torch_neuronx
    out["import_ok"] = True
    out["version"] = str(getattr(torch_neuronx, "__version__", ""))
    trace = getattr(torch_neuronx, "trace", None)
    if callable(trace):
        import inspect
        out["xla"] = True
        try:
            out["trace_params"] = list(inspect.signature(trace).parameters)
        except (TypeError, ValueError):
            pass
    out["data_parallel"] = callable(getattr(torch_neuronx, "DataParallel", None))
except BaseException as exc:
    out["error_type"], out["error"] = type(exc).__name__, str(exc)
try:
    out["native"] = torch._C._get_privateuse1_backend_name() == "neuron" and hasattr(torch, "neuron")
except Exception:
    pass
print(json.dumps(out))
"""


@dataclass(frozen=True)
class SdkProbe:
    installed: bool
    import_ok: bool = False
    error: str = ""
    error_type: str = ""
    xla: bool = False  # torch-neuronx's XLA flow: torch_neuronx.trace
    native: bool = False  # TorchNeuron: PrivateUse1 device "neuron" (SDK 2.32+)
    trace_params: tuple[str, ...] = ()
    data_parallel: bool = False
    version: str = ""

    @property
    def wrong_package(self) -> bool:
        return "WRONG PACKAGE" in self.error

    @property
    def stacks(self) -> str:
        parts = []
        if self.xla:
            parts.append(f"torch-neuronx {self.version or '?'} XLA flow (torch_neuronx.trace)")
        if self.native:
            parts.append("TorchNeuron native (device 'neuron', torch.compile backend 'neuron')")
        return " + ".join(parts) or "neither torch_neuronx.trace nor the native 'neuron' device"


def _probe_key() -> tuple:
    return (sys.executable, os.environ.get("PYTHONPATH", ""), tuple(sys.path))


@functools.lru_cache(maxsize=8)
def _probe(key: tuple) -> SdkProbe:
    import importlib.util

    if importlib.util.find_spec("torch_neuronx") is None and "torch_neuronx" not in _pythonpath_modules():
        return SdkProbe(installed=False)
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300,
                              check=False)
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return SdkProbe(installed=True, error=f"probing torch_neuronx failed: {exc}", error_type="ProbeError")
    data["trace_params"] = tuple(data.get("trace_params") or ())
    return SdkProbe(installed=True, **{k: v for k, v in data.items() if k in SdkProbe.__dataclass_fields__})


def _pythonpath_modules() -> set[str]:
    """Top-level names importable from PYTHONPATH entries (seen by subprocesses, maybe not by us)."""
    names: set[str] = set()
    for d in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if d and os.path.isdir(d):
            names.update(n.split(".")[0] for n in os.listdir(d))
    return names


def probe_sdk() -> SdkProbe:
    """Import torch_neuronx for real, in a subprocess (cached per interpreter and PYTHONPATH)."""
    return _probe(_probe_key())


def sdk_unavailable_reason(p: SdkProbe) -> str:
    if not p.installed:
        return f"no Neuron SDK: torch_neuronx is not installed in {sys.executable}; {REAL_SDK_HINT}"
    if p.wrong_package:
        return ("torch_neuronx here is PyPI's placeholder package (import raises ImportError: "
                f"{p.error.splitlines()[0][:120]}): PyPI's torch-neuronx, neuronx-cc, libneuronxla and "
                f"neuronperf are placeholders; {REAL_SDK_HINT}")
    if not p.import_ok:
        return f"import torch_neuronx failed: {p.error_type}: {p.error.splitlines()[0][:200] if p.error else ''}"
    if not (p.xla or p.native):
        return f"torch_neuronx {p.version} imports but offers {p.stacks}"
    return ""


# -- versions -------------------------------------------------------------------------------

SDK_DISTS = {"torch_neuronx": "torch-neuronx", "neuronx_cc": "neuronx-cc", "libneuronxla": "libneuronxla",
             "torch_xla": "torch-xla"}


def dist_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def sdk_versions() -> dict[str, str]:
    return {col: dist_version(dist) for col, dist in SDK_DISTS.items()}


@functools.lru_cache(maxsize=1)
def runtime_version() -> str:
    """The Neuron runtime library's package version (aws-neuronx-runtime-lib), '' if unknown."""
    for cmd in (["dpkg-query", "-W", "-f=${Version}", "aws-neuronx-runtime-lib"],
                ["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", "aws-neuronx-runtime-lib"]):
        if shutil.which(cmd[0]) is None:
            continue
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return ""


def driver_version() -> str:
    """The loaded Neuron kernel driver's version (/sys/module/neuron/version), '' if none."""
    try:
        with open("/sys/module/neuron/version", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


# -- neuron-monitor -------------------------------------------------------------------------


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
