"""The host's Neuron devices and tools: /dev/neuron*, neuron-ls, instance families.

Runs in the orchestrator (or in a worker for `describe`) and never imports the SDK.

neuron-ls, `--json-output` / `-j` up to Neuron 2.33 (a JSON list, one object per device:
neuron_device, bdf, cpu_affinity, numa_node, connected_to, nc_count,
logical_neuroncore_config (trn2), memory_size (bytes), neuroncore_ids, neuron_processes
[{pid, command, neuron_runtime_version}]; tools/neuron-sys-tools/neuron-ls.rst in
aws-neuron/aws-neuron-sdk), and `--output-format json` from 2.34, which wraps the devices
in an object with instance and UltraServer fields (see LS_FORMATS):
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
from dataclasses import dataclass, field
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
    """What neuron-ls says about this host, at the runtime's current LNC."""

    devices: list[dict[str, Any]]
    own_pids: frozenset[int] = frozenset()
    format: str = ""  # which neuron-ls JSON form answered (LS_FORMATS)
    host: dict[str, Any] = field(default_factory=dict)  # the 2.34 form's top-level facts

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


# The two JSON forms neuron-ls answers in, newest first. From Neuron 2.34 `--json-output`
# / `-j` are gone and `--output-format json` replaces them, with "top-level fields for
# information that applies to more than one device, such as instance and UltraServer
# details" (about-neuron/announcements/neuron2.x/announce-intent-eos-neuron-ls-json.rst,
# 16 Oct 2026). Before 2.34 `--output-format` does not exist and `-j` prints a bare list.
LS_FORMATS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("--output-format json", ("--output-format", "json")),
    ("--json-output", ("--json-output",)),
)


def _is_device(d: Any) -> bool:
    return isinstance(d, dict) and isinstance(d.get("nc_count"), int)


def _find_devices(data: Any, depth: int = 0) -> list[dict[str, Any]] | None:
    """The list of device objects wherever it sits (the 2.34 layout wraps it; its key is not
    documented, so it is found by shape: a list of objects with an integer `nc_count`)."""
    if isinstance(data, list):
        if data and all(_is_device(d) for d in data):
            return data
        if not data and depth == 0:
            return []
    if isinstance(data, dict) and depth < 4:
        for key in ("neuron_devices", "devices"):  # the likeliest names first
            found = _find_devices(data.get(key), depth + 1)
            if found is not None:
                return found
        for value in data.values():
            found = _find_devices(value, depth + 1)
            if found is not None:
                return found
    return None


def parse_neuron_ls(text: str) -> list[dict[str, Any]]:
    """Device objects from either neuron-ls JSON form (bare list, or wrapped in an object)."""
    return parse_neuron_ls_full(text)[0]


def parse_neuron_ls_full(text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(devices, the top-level scalar facts of the 2.34 form: instance, UltraServer...)."""
    data = json.loads(text)
    devices = _find_devices(data)
    if devices is None:
        raise ValueError("no list of devices (objects with nc_count) in the JSON")
    top: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                top[key] = value
            elif isinstance(value, dict):
                top.update({f"{key}.{k}": v for k, v in value.items() if isinstance(v, (str, int, float, bool))})
    return [d for d in devices if _is_device(d)], top


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


_LS_CACHE: dict[str, tuple[float, list[dict[str, Any]], str, dict[str, Any]]] = {}
LS_TTL_S = 5.0


def _run_ls(exe: str, args: tuple[str, ...]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"neuron-ls failed: {exc}") from None


def neuron_ls(fresh: bool = False) -> Inventory:
    """Ask neuron-ls for JSON, `--output-format json` (2.34+) first, then `--json-output`.

    Raises RuntimeError naming what each form answered when neither gives an inventory.
    """
    exe = find_tool("neuron-ls")
    if exe is None:
        raise RuntimeError("neuron-ls not found (it comes with the aws-neuronx-tools package, in /opt/aws/neuron/bin)")
    now = time.monotonic()
    cached = _LS_CACHE.get(exe)
    if cached and not fresh and now - cached[0] < LS_TTL_S:
        _, devices, form, top = cached
        return Inventory(devices=devices, own_pids=own_pids(), format=form, host=top)
    tried = []
    for form, args in LS_FORMATS:
        proc = _run_ls(exe, args)
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            tried.append(f"`neuron-ls {form}` exited {proc.returncode}" + (f" ({msg[0][:120]})" if msg else ""))
            continue
        try:
            devices, top = parse_neuron_ls_full(proc.stdout)
        except ValueError as exc:
            tried.append(f"`neuron-ls {form}` printed no inventory ({exc})")
            continue
        _LS_CACHE[exe] = (now, devices, form, top)
        return Inventory(devices=devices, own_pids=own_pids(), format=form, host=top)
    raise RuntimeError("cannot read neuron-ls: " + "; ".join(tried))


def try_neuron_ls() -> Inventory | None:
    return inventory_or_reason()[0]


def inventory_or_reason() -> tuple[Inventory | None, str]:
    """(inventory, '') or (None, why not): an inventory has at least one device."""
    try:
        inv = neuron_ls()
    except RuntimeError as exc:
        return None, str(exc)
    if not inv.devices:
        return None, f"neuron-ls {inv.format} lists no device"
    return inv, ""


def clear_cache() -> None:
    """Forget the cached neuron-ls answer (tests change the host under the cache)."""
    _LS_CACHE.clear()
