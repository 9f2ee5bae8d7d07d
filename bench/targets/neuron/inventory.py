"""The host's Neuron devices and tools: /dev/neuron*, neuron-ls, instance families.

Runs in the orchestrator (or in a worker for `describe`) and never imports the SDK.

neuron-ls, `--json-output` / `-j` (a JSON list, one object per device: neuron_device,
bdf, cpu_affinity, numa_node, connected_to, nc_count, logical_neuroncore_config (trn2),
memory_size (bytes), neuroncore_ids, neuron_processes [{pid, command,
neuron_runtime_version}]):
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-sys-tools/neuron-ls.html

Test hook (tests/stand_ins/README.md): TRNBENCH_DEV_GLOB replaces the `/dev/neuron*`
pattern; fake `neuron-ls` executables are found on PATH.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

TOOL_DIRS = ("/opt/aws/neuron/bin",)
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


def clear_cache() -> None:
    """Forget the cached neuron-ls answer (tests change the host under the cache)."""
    _LS_CACHE.clear()
