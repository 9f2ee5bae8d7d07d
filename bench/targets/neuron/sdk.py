"""The Neuron SDK, probed in a short-lived subprocess; its versions from package metadata.

The orchestrator never imports torch_neuronx in-process, so it never initialises a Neuron
runtime (DESIGN.md: never fork after that).

The stacks, as of Neuron 2.34 (aws-neuron/aws-neuron-sdk docs source and release notes):
- torch-neuronx's XLA flow (`torch_neuronx.trace`, package 2.9.0.2.15.x): in maintenance
  (critical fixes only) for inference on Inf2/Trn1 from 2.31 ("Torch/XLA support for
  Inference on Inf2 and Trn1 instances is now in maintenance mode starting with Neuron
  2.31", announce-maintenance-pytorch-xla-inference.rst; the archived inference page says
  "maintenance status as of Neuron SDK 2.32 ... It is not end-of-support"); not shipped
  from 2.32 (setup/pytorch/manual.rst pins the 2.31 package); PyTorch/XLA inference on
  Trn2/Trn3 is unsupported from 2.34 (announce-no-support-torch-xla-inference-trn).
- TorchNeuron, the native backend (device `neuron`, `torch.compile(backend="neuron")`,
  package torch-neuronx 2.13.x / 2.14.x tracking the PyTorch version): public beta in 2.33,
  Trn2 and Trn3 (release-notes/components/torchneuron.rst, torch/index.rst).
- NxD Inference: not in DLAMIs / DLCs from 2.32 (release-notes/components/dlamis.rst,
  containers.rst), in maintenance; unsupported on Trn2/Trn3 from 2.34
  (announce-no-support-nxdi-nxd-core-inference-trn). Install it with NXDI_INSTALL.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from bench.results.env import is_placeholder, package_version

NEURON_PIP_REPO = "https://pip.repos.neuron.amazonaws.com"
# libraries/nxd-inference/nxdi-setup.rst ("Option 3: Manually Install NxD Inference")
NXDI_INSTALL = (f"pip install --upgrade neuronx-cc==2.* neuronx-distributed-inference "
                f"--extra-index-url {NEURON_PIP_REPO}")
REAL_SDK_HINT = (f"the real SDK comes from the Neuron pip repository "
                 f"(pip install --extra-index-url {NEURON_PIP_REPO} torch-neuronx neuronx-cc) "
                 "or a Neuron DLAMI / Deep Learning Container")


# -- the SDK, probed in a subprocess -------------------------------------------------------

_PROBE = r"""
import json, sys
out = {"import_ok": False, "error": "", "error_type": "", "xla": False, "native": False,
       "trace_params": [], "data_parallel": False, "version": "", "compiler_version": "",
       "compiler_error": ""}
try:
    import neuronxcc  # the compiler's own version (its wheel version carries a +hash too)
    out["compiler_version"] = str(getattr(neuronxcc, "__version__", ""))
except BaseException as exc:
    out["compiler_error"] = type(exc).__name__ + ": " + str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
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
    compiler_version: str = ""  # neuronxcc.__version__ ('' when neuronx-cc is absent or PyPI's stub)
    compiler_error: str = ""

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
    """A distribution's version from its metadata; '' when absent or a PyPI placeholder."""
    return package_version(dist)


def sdk_versions() -> dict[str, str]:
    return {col: dist_version(dist) for col, dist in SDK_DISTS.items()}


def placeholders() -> list[str]:
    """The Neuron distributions installed here that are PyPI's placeholder stubs."""
    dists = ("torch-neuronx", "neuronx-cc", "libneuronxla", "neuronperf", "neuronx-distributed-inference")
    found = []
    for dist in dists:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        if is_placeholder(dist):
            found.append(f"{dist} {version}")
    return found


def compiler_version() -> str:
    """neuronx-cc's installed version (package metadata, '' for PyPI's stub); no import, so a
    worker or the planner can ask. The probe reads `neuronxcc.__version__` for `doctor`."""
    return dist_version("neuronx-cc")


def nxdi_facts() -> dict[str, str]:
    """NxD Inference: installed version ('' if not) and where its package lives (no import)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("neuronx_distributed_inference")
    except (ImportError, ValueError):
        spec = None
    return {"version": dist_version("neuronx-distributed-inference"),
            "path": str(spec.origin) if spec is not None and spec.origin else ""}


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
