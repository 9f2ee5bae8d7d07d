"""Host and software facts for every result row, captured without any network call.

The EC2 instance type comes from the DMI product name (never the instance-metadata
service); versions come from package metadata, so nothing heavy is imported.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

DMI_PRODUCT = Path("/sys/devices/virtual/dmi/id/product_name")
PACKAGES = {
    "torch": "torch", "transformers": "transformers", "torch_neuronx": "torch-neuronx",
    "neuronx_cc": "neuronx-cc", "libneuronxla": "libneuronxla", "torch_neuron": "torch-neuron",
    "neuronx_distributed_inference": "neuronx-distributed-inference", "numpy": "numpy",
}


def instance_type(override: str | None = None) -> str:
    """e.g. 'inf2.xlarge' on EC2 (DMI product_name), '' elsewhere."""
    if override:
        return override
    try:  # TRNBENCH_DMI_PATH: a test hook standing for the DMI file (tests/stand_ins/README.md)
        name = Path(os.environ.get("TRNBENCH_DMI_PATH") or DMI_PRODUCT).read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    # EC2 Nitro instances report their type ("inf2.xlarge"); others report a product name.
    return name if "." in name and " " not in name else ""


def package_version(dist: str) -> str:
    """The installed version of a distribution, '' if absent or a PyPI placeholder."""
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""
    return "" if is_placeholder(dist) else version


PLACEHOLDER_TEXT = "WRONG PACKAGE"


def is_placeholder(dist: str) -> bool:
    """PyPI's torch-neuronx 1.0, neuronx-cc 1.0.post1, libneuronxla 1.0 ... are stubs whose only
    module is `raise ImportError("WRONG PACKAGE. Please install the package from Neuron
    Repository - pip.repos.neuron.amazonaws.com")` (read from the wheels); their version is
    not an SDK version. Checked without importing anything: the top-level __init__.py text.
    neuronx-cc's stub even names its folder `neuronx-cc`, so `import neuronxcc` fails with
    ModuleNotFoundError."""
    if not dist.startswith(NEURON_DIST_PREFIXES):
        return False
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return False
    for f in files:
        if f.name == "__init__.py" and len(f.parts) == 2:
            try:
                if PLACEHOLDER_TEXT in f.read_text(encoding="utf-8"):
                    return True
            except (OSError, UnicodeDecodeError):
                continue
    return False


NEURON_DIST_PREFIXES = ("torch-neuron", "neuron", "libneuronxla", "torch-xla", "aws-neuronx")


def git_state() -> tuple[str, bool | None]:
    """(commit, dirty) of the checkout trnbench runs from, ('', None) if not a checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return "", None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=False).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "", None
    return commit, bool(status.strip()) if commit else None


def memory_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture(instance: str | None = None) -> dict[str, Any]:
    """Host environment columns shared by every row of a run."""
    from bench.version import __version__

    commit, dirty = git_state()
    env: dict[str, Any] = {
        "instance_type": instance_type(instance),
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "harness_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
    }
    for column, dist in PACKAGES.items():
        env[column] = package_version(dist)
    return env
