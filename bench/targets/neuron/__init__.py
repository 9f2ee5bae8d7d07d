"""Neuron target: AWS Inferentia2 / Trainium (inf2, trn1, trn2) through the Neuron SDK.

Compilers
- `trace`: `torch_neuronx.trace(module, example_inputs, compiler_workdir=..., compiler_args=[...])`
  -> `torch.jit.save` -> `torch.jit.load` in each worker. The compiler's work directory
  (with its log) is kept inside the cached artifact. On a host with no Neuron device the
  compile passes `cpu_backend=True`, which needs `--target` in the compiler args.
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-trace.html
- `trace-dp`: the same artifact compiled at batch_size / cores, run through
  `torch_neuronx.DataParallel(model, dim=0, set_dynamic_batching=False)` over the cores
  given to one worker process (by default one process over all free cores).
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-data-parallel.html
- `nxdi`: NxD Inference for the `generate` scenario (bench.targets.neuron.nxdi builds and runs it);
  its compiler args are NeuronConfig overrides (key=value) and a copy takes tp_degree cores.
- `native-eager`, `native-compile`: TorchNeuron (Neuron SDK 2.32+, Trainium 2/3), which
  retires the XLA flow: a PyTorch PrivateUse1 device `neuron` (`module.to("neuron")`,
  autoloaded by PyTorch 2.9+) and `torch.compile(backend="neuron")`. Each timed call is
  followed by a device synchronize.
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/torch/index.html
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/torch/about-pytorch-neuron.html

Placement: every model copy is its own spawned process whose NEURON_RT_VISIBLE_CORES is
set before the SDK is imported (bench.worker.main applies the environment first). Cores
held by other processes (per `neuron-ls --json-output`) are not used; asking for more
copies than there are free cores is a UsageError at plan time.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import env as host_env
from bench.errors import UsageError
from bench.spec import Cell
from bench.targets.base import Availability, Prepared, Target, to_device
from bench.targets.neuron import flags, inventory, monitor, sdk

TRACE = ("trace", "trace-dp")
NATIVE = ("native-eager", "native-compile")
NXDI = "nxdi"  # NxD Inference, generate scenario (bench.targets.neuron.nxdi)
COMPILE_ONLY_ENV = "TRNBENCH_COMPILE_ONLY"  # set by `trnbench compile`: build, do not load
CORE_ERROR_ENV = "TRNBENCH_CORE_ERROR"  # placement failed after planning: the cell fails with this


def _not_loaded(*_args):
    """Stands for the model under `trnbench compile`: the artifact is built, never run."""
    return None


class NeuronTarget(Target):
    name = "neuron"
    compilers = ("trace", "trace-dp", "native-eager", "native-compile", NXDI)
    lazy_compilers = ("native-compile",)
    saved_compilers = TRACE
    dtypes = ("fp32", "bf16", "fp16")
    start_method = "spawn"  # never fork a process that may hold a Neuron runtime

    def __init__(self) -> None:
        self._native_sync = False

    # -- orchestrator side ----------------------------------------------------------------

    def availability(self) -> Availability:
        probe = sdk.probe_sdk()
        devices = inventory.device_paths()
        sdk_reason = sdk.sdk_unavailable_reason(probe)
        dev_reason = ("" if devices else
                      "no Neuron devices (no /dev/neuron*): this is not an inf2/trn1/trn2 instance, "
                      "or the Neuron driver (aws-neuronx-dkms) is not loaded")
        if sdk_reason and dev_reason:
            return Availability(False, f"{sdk_reason}; and {dev_reason}")
        if sdk_reason:
            return Availability(False, sdk_reason)
        if dev_reason:
            extra = ""
            if probe.xla and "cpu_backend" in probe.trace_params:
                extra = ("; artifacts can still be built here: trnbench compile ... "
                         "--compiler-args '--target=inf2 ...'")
            return Availability(False, f"{dev_reason} (SDK present: {probe.stacks}){extra}")
        return Availability(True, f"SDK: {probe.stacks}")

    def resolve(self, cell: Cell) -> Cell:
        if cell.dtype not in self.dtypes:
            raise UsageError(f"target neuron does not support dtype {cell.dtype} (choose from {', '.join(self.dtypes)})")
        flags = self._flags(cell)
        if cell.compiler in NATIVE and cell.compiler_args:
            raise UsageError(f"--compiler-args apply to the trace compilers (neuronx-cc flags), "
                             f"not to {cell.compiler}")
        family = inventory.instance_family(host_env.instance_type())
        target = flags.get("target")
        if target and family in _ALL_FAMILIES and family not in flags.TARGET_FAMILIES.get(target, ()):
            raise UsageError(f"compiler args say --target={target} but this host is a {host_env.instance_type()}: "
                             f"its artifacts would not run here")
        if cell.scenario == "latency":  # SingleStream: one copy, one request in flight
            cell = replace(cell, n_models=1, workers_per_model=1)
        else:  # throughput keeps two requests in flight per copy (NeuronPerf's default)
            default_n = 1 if cell.compiler == "trace-dp" else 0
            cell = replace(cell, n_models=cell.n_models or default_n,
                           workers_per_model=cell.workers_per_model or (2 if cell.scenario == "throughput" else 1))
        inv = inventory.try_neuron_ls()
        if inv is None:  # planning on a host without neuron-ls: nothing to check against
            return replace(cell, n_models=cell.n_models or 1)
        free = inv.free_cores(self._lnc(flags))
        if not cell.n_models:
            if not free:
                raise UsageError(self._no_cores_message(cell, inv, free, 1))
            cell = replace(cell, n_models=len(free))
        blocks = self._blocks(cell, free)
        if len(blocks) < cell.n_models:
            raise UsageError(self._no_cores_message(cell, inv, free, cell.n_models * self._cores_each(cell, free)))
        if cell.compiler == "trace-dp":
            each = len(blocks[0])
            if cell.batch_size % each:
                raise UsageError(f"{cell.label}: trace-dp splits a batch of {cell.batch_size} over {each} "
                                 f"NeuronCores; give a batch size divisible by {each}")
        return cell

    def _no_cores_message(self, cell: Cell, inv: inventory.Inventory, free: list[int], needed: int) -> str:
        busy = inv.busy_summary()
        return (f"{cell.label}: needs {needed} NeuronCore(s) but {len(free)} of {inv.nc_total} are free"
                + (f" (held: {busy})" if busy else "")
                + "; lower --n-models, or stop the other process (see neuron-ls)")

    @staticmethod
    def _flags(cell: Cell) -> dict[str, str]:
        """The neuronx-cc flags of a cell (nxdi's args are NeuronConfig overrides instead)."""
        return {} if cell.compiler == NXDI else flags.parse_compiler_args(cell.compiler_args)

    @staticmethod
    def _lnc(flags: dict[str, str]) -> int | None:
        return int(flags["logical-nc-config"]) if "logical-nc-config" in flags else None

    @staticmethod
    def _cores_each(cell: Cell, free: list[int]) -> int:
        """NeuronCores per model process: 1, tp_degree for nxdi, or for trace-dp the free cores split."""
        if cell.compiler == NXDI:
            from bench.targets.neuron.nxdi import parse_overrides

            return max(1, int(parse_overrides(cell.compiler_args).get("tp_degree", 1)))
        if cell.compiler != "trace-dp":
            return 1
        return max(1, len(free) // max(1, cell.n_models))

    def _blocks(self, cell: Cell, free: list[int]) -> list[list[int]]:
        """Contiguous core ranges, one per model copy (NEURON_RT_VISIBLE_CORES takes a range)."""
        each = self._cores_each(cell, free)
        runs: list[list[int]] = []
        for core in free:
            if runs and core == runs[-1][-1] + 1:
                runs[-1].append(core)
            else:
                runs.append([core])
        blocks = [run[i:i + each] for run in runs for i in range(0, len(run) - each + 1, each)]
        return blocks[: cell.n_models] if cell.n_models else blocks

    def worker_env(self, cell: Cell, model_index: int) -> dict[str, str]:
        env = {"NEURON_PROCESS_TAG": f"trnbench-{os.getpid()}-m{model_index}"}
        flags = self._flags(cell)
        if "logical-nc-config" in flags:  # the runtime's LNC must equal the compiler's -lnc
            env["NEURON_LOGICAL_NC_CONFIG"] = flags["logical-nc-config"]
        inv = inventory.try_neuron_ls()
        if inv is None:
            return env
        blocks = self._blocks(cell, inv.free_cores(self._lnc(flags)))
        if model_index < len(blocks):
            env["NEURON_RT_VISIBLE_CORES"] = inventory.format_cores(blocks[model_index])
        else:
            env[CORE_ERROR_ENV] = ("no free NeuronCore left for model copy "
                                   f"{model_index + 1} of {cell.n_models}: {inv.busy_summary() or 'all in use'}")
        return env

    def watch(self, cell: Cell):
        """neuron-monitor during throughput cells, when it is installed (runner calls stop())."""
        if cell.scenario != "throughput":
            return None
        exe = inventory.find_tool("neuron-monitor")
        if exe is None:
            return None
        return monitor.MonitorWatch(exe, tag_regex=f"^trnbench-{os.getpid()}-").start()

    def compile_preflight(self, cells: list[Cell]) -> None:
        """Checks for `trnbench compile`: an SDK with trace, and --target when there is no device."""
        probe = sdk.probe_sdk()
        reason = sdk.sdk_unavailable_reason(probe)
        if reason:
            raise UsageError(f"cannot compile for neuron: {reason}")
        if not probe.xla:
            raise UsageError(f"cannot compile for neuron: {probe.stacks} has no torch_neuronx.trace "
                             "(TorchNeuron compiles on first call, on Trainium)")
        if inventory.device_paths():
            return
        if "cpu_backend" not in probe.trace_params:
            raise UsageError(f"no Neuron device here and torch-neuronx {probe.version} has no "
                             "trace(cpu_backend=...): compile on an inf2/trn1/trn2 instance, or upgrade the SDK")
        for c in cells:
            if c.compiler in TRACE and "target" not in flags.parse_compiler_args(c.compiler_args):
                raise UsageError(f"{c.label}: compiling without a Neuron device (cpu_backend=True) needs "
                                 "--target in the compiler args, e.g. --compiler-args '--target=inf2'")

    def accuracy_dtype(self, cell: Cell) -> str:
        """The precision to judge outputs by: neuronx-cc --auto-cast casts fp32 ops to --auto-cast-type."""
        flags = self._flags(cell)
        if flags.get("auto-cast", "none") == "none":
            return cell.dtype
        cast = {"fp8_e4m3": "fp8"}.get(flags.get("auto-cast-type", "bf16"), flags.get("auto-cast-type", "bf16"))
        order = ["fp32", "tf32", "fp16", "bf16", "fp8"]
        return max(cell.dtype, cast, key=order.index)

    # -- worker side -------------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        return {"torch": sdk.dist_version("torch"), **sdk.sdk_versions()}

    def configure_cell(self, cell: Cell) -> None:
        self._native_sync = cell.compiler in NATIVE

    def describe(self) -> dict[str, Any]:
        family = inventory.instance_family(host_env.instance_type())
        out: dict[str, Any] = {"accelerator": "neuron", "device_name": inventory.DEVICE_NAMES.get(family, "AWS Neuron device"),
                               "neuron_visible_cores": os.environ.get("NEURON_RT_VISIBLE_CORES", ""),
                               "neuron_runtime": sdk.runtime_version(), "neuron_driver": sdk.driver_version(),
                               "neuron_cc_flags": os.environ.get("NEURON_CC_FLAGS", "")}
        out.update({k: v for k, v in sdk.sdk_versions().items() if v})
        try:
            inv = inventory.neuron_ls(fresh=True)
        except RuntimeError as exc:
            out["neuron_ls_error"] = str(exc)
            return out
        out.update(device_count=len(inv.devices), neuron_cores=inv.nc_total, neuron_lnc=inv.lnc,
                   device_memory_gib=round(inv.memory_bytes / 2**30, 1))
        return out

    def sync(self) -> None:
        if not self._native_sync:
            return  # a traced model takes and returns CPU tensors: the call returns when it is done
        import torch

        accel = getattr(torch, "accelerator", None)
        if accel is not None and hasattr(accel, "synchronize"):
            accel.synchronize()
        else:
            torch.neuron.synchronize()

    def prepare(self, module, inputs: tuple, cell: Cell, cache_key: dict[str, Any] | None,
                cache_root: Path) -> Prepared:
        if os.environ.get(CORE_ERROR_ENV):
            raise RuntimeError(os.environ[CORE_ERROR_ENV])
        self._check_stack(cell)
        if cache_key is not None and cell.compiler in TRACE:
            cache_key = dict(cache_key, neuron=self._artifact_facts(cell))
        return super().prepare(module, inputs, cell, cache_key, cache_root)

    def _check_stack(self, cell: Cell) -> None:
        """The compiler's stack must be there (imports the SDK: worker side only)."""
        import torch

        try:
            import torch_neuronx
        except ImportError as exc:
            raise RuntimeError(f"import torch_neuronx failed: {exc}"
                               + (f"; {sdk.REAL_SDK_HINT}" if "WRONG PACKAGE" in str(exc) else "")) from None
        if cell.compiler in TRACE and not callable(getattr(torch_neuronx, "trace", None)):
            raise RuntimeError(f"compiler {cell.compiler} needs torch_neuronx.trace (the XLA flow, retired in "
                               f"SDK 2.32): this torch-neuronx {getattr(torch_neuronx, '__version__', '')} is "
                               "TorchNeuron; use native-eager or native-compile")
        if cell.compiler == "trace-dp" and not callable(getattr(torch_neuronx, "DataParallel", None)):
            raise RuntimeError("compiler trace-dp needs torch_neuronx.DataParallel")
        if cell.compiler in NATIVE:
            native = False
            try:
                native = torch._C._get_privateuse1_backend_name() == "neuron"
            except AttributeError:
                pass
            if not native:
                raise RuntimeError(f"compiler {cell.compiler} needs TorchNeuron (Neuron SDK 2.32+, trn2/trn3): "
                                   "no PyTorch device 'neuron' is registered in this environment")

    def _dp_cores(self) -> int:
        visible = os.environ.get("NEURON_RT_VISIBLE_CORES", "")
        if "-" in visible:
            lo, hi = visible.split("-", 1)
            return int(hi) - int(lo) + 1
        return len([v for v in visible.split(",") if v.strip()]) or 1

    def _artifact_facts(self, cell: Cell) -> dict[str, Any]:
        """What changes the NEFF beyond the base key: the chip, NEURON_CC_FLAGS, trace-dp's split."""
        flags = self._flags(cell)
        facts: dict[str, Any] = {
            "target": flags.get("target") or inventory.instance_family(host_env.instance_type()) or "unknown",
            "NEURON_CC_FLAGS": os.environ.get("NEURON_CC_FLAGS", ""),
        }
        if cell.compiler == "trace-dp":
            facts["dp_cores"] = self._dp_cores()
        return facts

    def place(self, module, inputs: tuple, cell: Cell):
        if cell.compiler not in NATIVE:
            return module, inputs  # traced models consume CPU tensors
        return to_device(module, inputs, "neuron")

    def wrap(self, module, inputs: tuple, cell: Cell):
        if cell.compiler == "native-eager":
            return module
        import torch

        return torch.compile(module, backend="neuron")

    def compile_artifact(self, module, inputs: tuple, cell: Cell, workdir: Path) -> None:
        import inspect

        import torch
        import torch_neuronx

        if cell.compiler == "trace-dp":  # compiled per core; DataParallel splits the batch at run time
            per_core = cell.batch_size // self._dp_cores()
            inputs = tuple(t[:per_core] for t in inputs)
        kwargs: dict[str, Any] = {"compiler_workdir": str(workdir / "compiler")}
        if cell.compiler_args:
            kwargs["compiler_args"] = list(cell.compiler_args)
        if not inventory.device_paths():
            if "cpu_backend" not in inspect.signature(torch_neuronx.trace).parameters:
                raise RuntimeError("no Neuron device here, and this torch_neuronx.trace has no cpu_backend")
            kwargs["cpu_backend"] = True
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings from transformers' shape checks
            traced = torch_neuronx.trace(module, inputs, **kwargs)
        torch.jit.save(traced, str(workdir / "model.pt"))
        for neff in (workdir / "compiler").rglob("*.neff"):
            neff.unlink()  # embedded in model.pt; the logs and the rest of the workdir are kept
        record = {"call": "torch_neuronx.trace", "kwargs": kwargs,
                  "example_inputs": [[list(t.shape), str(t.dtype)] for t in inputs],
                  "versions": self.versions(), "neuron": self._artifact_facts(cell)}
        (workdir / "compile.json").write_text(json.dumps(record, indent=1, default=str))

    def load_artifact(self, workdir: Path, cell: Cell):
        if os.environ.get(COMPILE_ONLY_ENV):
            return _not_loaded
        import torch
        import torch_neuronx

        model = torch.jit.load(str(workdir / "model.pt"))  # loads onto this process's visible core(s)
        if cell.compiler == "trace-dp":
            model = torch_neuronx.DataParallel(model, dim=0, set_dynamic_batching=False)
        return model


_ALL_FAMILIES = {f for fams in flags.TARGET_FAMILIES.values() for f in fams}
