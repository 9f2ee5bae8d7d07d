"""Neuron target: AWS Inferentia2 / Trainium (inf2, trn1, trn2, trn3) through the Neuron SDK.

Compilers
- `trace`: `torch_neuronx.trace(module, example_inputs, compiler_workdir=..., compiler_args=[...])`
  -> `torch.jit.save` -> `torch.jit.load` in each worker. neuronx-cc's log goes to
  `--logfile` inside the artifact's compiler directory; after the save, the HLO and weight
  copies the compiler leaves in its work directory are removed (the NEFF and the weights
  live in model.pt). On a host with no Neuron device the compile passes `cpu_backend=True`
  (which needs `--target`, "This keyword needs to be used with the compiler_args option to
  set the --target flag") and its worker gets NEURON_PLATFORM_TARGET_OVERRIDE before the SDK
  is imported, as optimum-neuron does (optimum/commands/export/neuronx.py; PR
  huggingface/optimum-neuron#961: "you can still compile, provided you set the platform
  target before importing NeuronX libraries").
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/archive/frameworks/torch/torch-neuronx/api-reference-guide/inference/inference-api-guide-torch-neuronx.html (trace: api-torch-neuronx-trace.rst in aws-neuron/aws-neuron-sdk)
- `trace-dp`: the same artifact compiled at batch_size / cores, run through
  `torch_neuronx.DataParallel(model, dim=0, set_dynamic_batching=False)` over the cores
  given to one worker process (by default one process over all free cores). The split is
  planned (`Cell.cores_per_model`): from the free cores where neuron-ls answers, else from
  `--target` (one device of that chip), so an artifact built on a CPU host hits the cache
  on the Neuron host.
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/archive/frameworks/torch/torch-neuronx/api-reference-guide/inference/inference-api-guide-torch-neuronx.html (DataParallel: api-torch-neuronx-data-parallel.rst)
- `nxdi`: NxD Inference for the `generate` scenario (bench.targets.neuron.nxdi builds and runs it);
  its compiler args are NeuronConfig overrides (key=value) and a copy takes tp_degree cores.
- `native-eager`, `native-compile`: TorchNeuron, the native PyTorch backend (public beta
  from Neuron 2.33, Trainium 2/3): a PyTorch PrivateUse1 device `neuron`
  (`module.to("neuron")`, autoloaded by PyTorch) and `torch.compile(backend="neuron")`. Each
  timed call is followed by a device synchronize. On Trn2/Trn3, where PyTorch/XLA inference
  is unsupported from Neuron 2.34, `native-compile` is the default compiler.
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/torch/index.html

Placement: every model copy is its own spawned process whose NEURON_RT_VISIBLE_CORES is
set before the SDK is imported (bench.execute.worker.main applies the environment first). Cores
held by other processes (per neuron-ls) are not used; asking for more copies than there
are free cores is a UsageError at plan time, and so is a host with Neuron devices whose
inventory cannot be read: a worker never runs without NEURON_RT_VISIBLE_CORES.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.results import env as host_env
from bench.targets.base import Availability, Prepared, Target, to_device
from bench.targets.neuron import flags as ncc
from bench.targets.neuron import inventory, monitor, sdk
from bench.targets.neuron.train import NATIVE, TORCHNEURON_FAMILIES, XLA, NeuronTraining

TRACE = ("trace", "trace-dp")
NXDI = "nxdi"  # NxD Inference, generate scenario (bench.targets.neuron.nxdi)
NEURON_CORES = "neuron_cores"  # Ray's built-in resource name for AWS NeuronCores
COMPILE_ONLY_ENV = "TRNBENCH_COMPILE_ONLY"  # set by `trnbench compile`: build, do not load
CORE_ERROR_ENV = "TRNBENCH_CORE_ERROR"  # placement failed after planning: the cell fails with this
PLATFORM_ENV = "NEURON_PLATFORM_TARGET_OVERRIDE"
# NeuronCores of one device, per --target: what a trace-dp copy splits over when planned on a
# host without devices (inf2.xlarge / trn1.2xlarge: 1 device, 2 NeuronCores; trn1n: 2 per
# device; trn2: 4 logical cores per device at LNC=2, 8 at LNC=1 -- DESIGN.md's instance facts).
ONE_DEVICE_CORES = {"inf2": 2, "trn1": 2, "trn1n": 2, "trn2": 4, "trn2n": 4}
# What neuronx-cc leaves in its work directory that the saved model.pt already holds:
# the HLO, its weights (model/weights/*.npy in torch_neuronx's layout) and the NEFF.
WORKDIR_COPIES = ("*.neff", "*.hlo", "*.hlo_module.pb", "*.npy", "*.safetensors")


def _not_loaded(*_args):
    """Stands for the model under `trnbench compile`: the artifact is built, never run."""
    return None


class NeuronTarget(NeuronTraining, Target):
    name = "neuron"
    verbs = ("infer", "generate", "train")  # train: bench.targets.neuron.train
    kind = "neuron"
    ray_resource = NEURON_CORES
    compilers = ("trace", "trace-dp", "native-eager", "native-compile", NXDI, XLA)
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
                      "no Neuron devices (no /dev/neuron*): this is not an inf2/trn1/trn2/trn3 instance, "
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

    def default_compiler(self) -> tuple[list[str], str]:
        """trace, except on Trn2/Trn3 with TorchNeuron: PyTorch/XLA inference ends there in 2.34."""
        family = inventory.instance_family(host_env.instance_type())
        if family not in TORCHNEURON_FAMILIES:
            return ["trace"], ""
        if sdk.probe_sdk().native:
            return ["native-compile"], (f"{family}: default compiler native-compile (TorchNeuron): PyTorch/XLA "
                                        "inference is not supported on Trn2/Trn3 from Neuron 2.34")
        return ["trace"], (f"{family}: default compiler trace (no TorchNeuron here); PyTorch/XLA inference is "
                           "not supported on Trn2/Trn3 from Neuron 2.34, where TorchNeuron's native-compile "
                           "replaces it")

    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        if cell.compiler not in TRACE:
            return {}
        version = sdk.compiler_version()
        return {"effective_auto_cast": ncc.effective_auto_cast(self._flags(cell), version),
                "neuronx_cc_default_auto_cast": ncc.default_auto_cast(version)}

    def resolve(self, cell: Cell) -> Cell:
        if cell.dtype not in self.dtypes:
            raise UsageError(f"target neuron does not support dtype {cell.dtype} (choose from {', '.join(self.dtypes)})")
        flags = self._flags(cell)
        if cell.compiler == XLA and cell.dp is None:
            raise UsageError("-c xla is Trn1's PyTorch/XLA training flow (-s train); inference compiles with trace")
        if cell.dp is not None:  # a training cell (bench.targets.neuron.train)
            self.check_train(cell)
        if cell.compiler in NATIVE and cell.compiler_args:
            raise UsageError(f"--compiler-args apply to the trace compilers (neuronx-cc flags), "
                             f"not to {cell.compiler}")
        if cell.compiler == NXDI:
            from bench.targets.neuron.nxdi import check_overrides

            check_overrides(cell.compiler_args)
        family = inventory.instance_family(host_env.instance_type())
        target = flags.get("target")
        if target and family in _ALL_FAMILIES and family not in ncc.TARGET_FAMILIES.get(target, ()):
            raise UsageError(f"compiler args say --target={target} but this host is a {host_env.instance_type()}: "
                             f"its artifacts would not run here")
        # what the scenario left open: a saturating load keeps two requests in flight per copy
        # (NeuronPerf's default) on every free core (one DataParallel process for trace-dp)
        cell = replace(cell, n_models=cell.n_models or (1 if cell.compiler == "trace-dp" else 0),
                       workers_per_model=cell.workers_per_model or 2)
        inv, why = inventory.inventory_or_reason()
        if inv is None:
            devices = inventory.device_paths()
            if devices:
                raise UsageError(f"{cell.label}: this host has {len(devices)} Neuron device(s) but no NeuronCore "
                                 f"inventory ({why}); trnbench never starts a Neuron worker without "
                                 "NEURON_RT_VISIBLE_CORES: install aws-neuronx-tools (neuron-ls)")
            # no device here: planning a compile (or a run that will be skipped)
            return replace(cell, n_models=cell.n_models or 1, cores_per_model=self._cores_without_device(cell, flags))
        free = inv.free_cores(ncc.lnc(flags))
        if not cell.n_models:
            if not free:
                raise UsageError(self._no_cores_message(cell, inv, free, 1))
            cell = replace(cell, n_models=len(free))
        blocks = self._blocks(cell, free)
        if len(blocks) < cell.n_models:
            raise UsageError(self._no_cores_message(cell, inv, free, cell.n_models * self._cores_each(cell, free)))
        cell = replace(cell, cores_per_model=len(blocks[0]) if cell.compiler in ("trace-dp", NXDI) else None)
        self._check_split(cell)
        return cell

    def _cores_without_device(self, cell: Cell, flags: dict[str, str]) -> int | None:
        """cores_per_model planned without an inventory: nxdi's tp_degree, trace-dp's chip."""
        if cell.compiler == NXDI:
            return self._cores_each(cell, [])
        if cell.compiler != "trace-dp":
            return None
        target = flags.get("target")
        if target not in ONE_DEVICE_CORES:
            raise UsageError(f"{cell.label}: planning trace-dp without a Neuron device needs --target "
                             f"({', '.join(ONE_DEVICE_CORES)}) to know how many NeuronCores a copy splits over")
        each = ONE_DEVICE_CORES[target] * (2 if target.startswith("trn2") and ncc.lnc(flags) == 1 else 1)
        cell = replace(cell, cores_per_model=each)
        self._check_split(cell)
        return each

    @staticmethod
    def _check_split(cell: Cell) -> None:
        each = cell.cores_per_model
        if cell.compiler == "trace-dp" and each and cell.batch_size % each:
            raise UsageError(f"{cell.label}: trace-dp splits a batch of {cell.batch_size} over {each} "
                             f"NeuronCores; give a batch size divisible by {each}")

    def _no_cores_message(self, cell: Cell, inv: inventory.Inventory, free: list[int], needed: int) -> str:
        busy = inv.busy_summary()
        return (f"{cell.label}: needs {needed} NeuronCore(s) but {len(free)} of {inv.nc_total} are free"
                + (f" (held: {busy})" if busy else "")
                + "; lower --n-models, or stop the other process (see neuron-ls)")

    @staticmethod
    def _flags(cell: Cell) -> dict[str, str]:
        """The neuronx-cc flags of a cell (nxdi's args are NeuronConfig overrides instead)."""
        return {} if cell.compiler == NXDI else ncc.parse_compiler_args(cell.compiler_args)

    @staticmethod
    def _cores_each(cell: Cell, free: list[int]) -> int:
        """NeuronCores per model process: 1, tp_degree for nxdi, or for trace-dp the free cores split."""
        if cell.compiler == NXDI:
            from bench.targets.neuron.nxdi import parse_overrides

            return max(1, int(parse_overrides(cell.compiler_args).get("tp_degree", 1)))
        if cell.compiler != "trace-dp":
            return 1
        if cell.cores_per_model:
            return cell.cores_per_model
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
        if "logical-nc-config" in flags:  # the runtime's LNC must equal the compiler's (any spelling)
            env["NEURON_LOGICAL_NC_CONFIG"] = flags["logical-nc-config"]
        if not inventory.device_paths():  # compiling on a host without devices (trnbench compile)
            target = flags.get("target")
            if target and not os.environ.get(PLATFORM_ENV):
                env[PLATFORM_ENV] = ncc.PLATFORM_OVERRIDE[target]
            return env
        if (cell.dp or 1) > 1:  # each rank gets its core from its launcher (LOCAL_RANK), not from us
            return env
        inv, why = inventory.inventory_or_reason()
        if inv is None:
            env[CORE_ERROR_ENV] = (f"no NeuronCore inventory ({why}): a Neuron worker never starts "
                                   "without NEURON_RT_VISIBLE_CORES")
            return env
        blocks = self._blocks(cell, inv.free_cores(ncc.lnc(flags)))
        if model_index < len(blocks):
            env["NEURON_RT_VISIBLE_CORES"] = inventory.format_cores(blocks[model_index])
        else:
            env[CORE_ERROR_ENV] = ("no free NeuronCore left for model copy "
                                   f"{model_index + 1} of {cell.n_models}: {inv.busy_summary() or 'all in use'}")
        return env

    def profile_env(self, cell: Cell, out_dir: Path) -> dict[str, str]:
        """`--profile`: the runtime's capture, in a worker of its own (bench.targets.neuron.profile)."""
        from bench.targets.neuron.profile import inspect_env

        # session mode "is required on PJRT runtimes (PyTorch native, JAX)": TorchNeuron, and XLA training
        return inspect_env(out_dir, session=cell.compiler in NATIVE or cell.compiler == "xla")

    def profile_summary(self, cell: Cell, out_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
        from bench.targets.neuron.profile import summarise

        return summarise(out_dir, summary, inventory.find_tool)

    def profiler(self, cell: Cell, out_dir: Path):
        """Nothing of torch's: the runtime captures (its environment was set at the worker's start)."""
        from bench.targets.neuron.profile import NeuronCapture

        return NeuronCapture(out_dir)

    def watch(self, cell: Cell):
        """neuron-monitor during the cell, when it is installed (the runner calls stop())."""
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
            if c.compiler in TRACE and "target" not in ncc.parse_compiler_args(c.compiler_args):
                raise UsageError(f"{c.label}: compiling without a Neuron device (cpu_backend=True) needs "
                                 "--target in the compiler args, e.g. --compiler-args '--target=inf2'")

    def accuracy_dtype(self, cell: Cell) -> str:
        """The precision to judge outputs by: neuronx-cc --auto-cast casts fp32 ops to --auto-cast-type.

        Without the flag, the installed compiler's default (matmult before Neuron 2.27).
        """
        flags = self._flags(cell)
        if cell.compiler not in TRACE or ncc.effective_auto_cast(flags, sdk.compiler_version()) == "none":
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
        out: dict[str, Any] = {"accelerator": "neuron",
                               "device_name": inventory.DEVICE_NAMES.get(family, "AWS Neuron device"),
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
                   device_memory_gib=round(inv.memory_bytes / 2**30, 1), neuron_ls_format=inv.format)
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
            raise RuntimeError(f"compiler {cell.compiler} needs torch_neuronx.trace (the XLA flow, in maintenance "
                               f"from SDK 2.31/2.32): this torch-neuronx {getattr(torch_neuronx, '__version__', '')} "
                               "is TorchNeuron; use native-eager or native-compile")
        if cell.compiler == "trace-dp" and not callable(getattr(torch_neuronx, "DataParallel", None)):
            raise RuntimeError("compiler trace-dp needs torch_neuronx.DataParallel")
        if cell.compiler in NATIVE:
            native = False
            try:
                native = torch._C._get_privateuse1_backend_name() == "neuron"
            except AttributeError:
                pass
            if not native:
                raise RuntimeError(f"compiler {cell.compiler} needs TorchNeuron (Neuron SDK 2.33+, trn2/trn3): "
                                   "no PyTorch device 'neuron' is registered in this environment")

    def _per_core(self, cell: Cell) -> int:
        """trace-dp: the batch each NeuronCore is compiled for (the planned split, never the env)."""
        each = cell.cores_per_model or 1
        return max(1, cell.batch_size // each)

    def _artifact_facts(self, cell: Cell) -> dict[str, Any]:
        """What changes the NEFF beyond the base key: the chip, NEURON_CC_FLAGS, trace-dp's split."""
        flags = self._flags(cell)
        facts: dict[str, Any] = {
            "target": flags.get("target") or inventory.instance_family(host_env.instance_type()) or "unknown",
            "NEURON_CC_FLAGS": os.environ.get("NEURON_CC_FLAGS", ""),
        }
        if cell.compiler == "trace-dp":
            facts["per_core_batch"] = self._per_core(cell)
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
            inputs = tuple(t[:self._per_core(cell)] for t in inputs)
        compiler_dir = workdir / "compiler"
        args = list(cell.compiler_args)
        if "logfile" not in self._flags(cell):
            args.append(f"--logfile={compiler_dir / ncc.LOGFILE}")
        kwargs: dict[str, Any] = {"compiler_workdir": str(compiler_dir), "compiler_args": args}
        if not inventory.device_paths():
            if "cpu_backend" not in inspect.signature(torch_neuronx.trace).parameters:
                raise RuntimeError("no Neuron device here, and this torch_neuronx.trace has no cpu_backend")
            kwargs["cpu_backend"] = True
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings from transformers' shape checks
            traced = torch_neuronx.trace(module, inputs, **kwargs)
        torch.jit.save(traced, str(workdir / "model.pt"))
        removed = _remove_workdir_copies(compiler_dir)
        record = {"call": "torch_neuronx.trace", "kwargs": kwargs,
                  "example_inputs": [[list(t.shape), str(t.dtype)] for t in inputs],
                  "platform_target_override": os.environ.get(PLATFORM_ENV, ""),
                  "removed_from_workdir": removed,
                  "versions": self.versions(), "neuron": self._artifact_facts(cell)}
        (workdir / "compile.json").write_text(json.dumps(record, indent=1, default=str))

    def load_artifact(self, workdir: Path, cell: Cell):
        if os.environ.get(COMPILE_ONLY_ENV):
            return _not_loaded
        import torch
        import torch_neuronx

        model = torch.jit.load(str(workdir / "model.pt"))  # loads onto this process's visible core(s)
        if cell.compiler == "trace-dp":
            visible = _count_cores(os.environ.get("NEURON_RT_VISIBLE_CORES", ""))
            if cell.cores_per_model and visible != cell.cores_per_model:
                raise RuntimeError(f"trace-dp was planned over {cell.cores_per_model} NeuronCores per copy, "
                                   f"but this process sees {visible} (NEURON_RT_VISIBLE_CORES="
                                   f"{os.environ.get('NEURON_RT_VISIBLE_CORES', '')})")
            model = torch_neuronx.DataParallel(model, dim=0, set_dynamic_batching=False)
        return model

    def requests(self, verb: str):
        if verb == "generate":
            from bench.targets.neuron.generate import NXDI_GENERATE

            return NXDI_GENERATE
        return super().requests(verb)

    def on_ray_ids(self, ids: list[str]):
        """Each model copy on its block of the NeuronCores Ray assigned (OnRayCores)."""
        return OnRayCores(self, ids)

    def ray_need(self, cell: Cell, on: str | None, nodes: list[dict[str, float]]):
        """One NeuronCore per model copy; trace-dp all the cores of the smallest eligible node
        (as it uses all free cores locally); then the CPUs, as every target's."""
        from dataclasses import replace as copy

        need = super().ray_need(cell, on, nodes)
        if cell.compiler != "trace-dp":
            return need
        eligible = [r for r in nodes if not on or r.get("instance:" + on, 0) >= 1]
        cores = [int(r.get(NEURON_CORES, 0)) for r in eligible if r.get(NEURON_CORES, 0) >= 1]
        return copy(need, resources={**need.resources, NEURON_CORES: min(cores) if cores else max(1, cell.n_models)})


def _count_cores(visible: str) -> int:
    """'0-3' -> 4, '0,2' -> 2, '' -> 0."""
    n = 0
    for part in (p.strip() for p in visible.split(",") if p.strip()):
        lo, _, hi = part.partition("-")
        n += int(hi) - int(lo) + 1 if hi else 1
    return n


def _remove_workdir_copies(compiler_dir: Path) -> dict[str, int]:
    """Delete the compiler's copies of the graph and the weights (model.pt holds them); keep logs."""
    files, size = 0, 0
    for pattern in WORKDIR_COPIES:
        for path in compiler_dir.rglob(pattern):
            if path.is_file():
                size += path.stat().st_size
                files += 1
                path.unlink()
    for weights in [p for p in compiler_dir.rglob("weights") if p.is_dir()]:
        for path in weights.rglob("*"):
            if path.is_file():
                size += path.stat().st_size
                files += 1
        shutil.rmtree(weights, ignore_errors=True)
    return {"files": files, "bytes": size}


_ALL_FAMILIES = {f for fams in ncc.TARGET_FAMILIES.values() for f in fams}


class OnRayCores:
    """The neuron target, with each model copy on the NeuronCores Ray assigned to this task.

    Ray sets NEURON_RT_VISIBLE_CORES for the task; two cells sharing a node must not both
    pick the first free cores, so copy i gets the i-th block of Ray's cores.
    """

    def __init__(self, target, cores: list[str]):
        self._target = target
        self._cores = sorted(cores, key=int)

    def __getattr__(self, name: str):
        return getattr(self._target, name)

    def worker_env(self, cell: Cell, model_index: int) -> dict[str, str]:
        env = dict(self._target.worker_env(cell, model_index))
        env.pop(CORE_ERROR_ENV, None)
        n = max(1, cell.n_models)
        each = max(1, len(self._cores) // n)
        block = self._cores[model_index * each:(model_index + 1) * each]
        if not block:
            env[CORE_ERROR_ENV] = f"Ray assigned {len(self._cores)} NeuronCore(s) for {n} model copies"
            return env
        ids = [int(c) for c in block]
        contiguous = ids == list(range(ids[0], ids[0] + len(ids)))
        env["NEURON_RT_VISIBLE_CORES"] = (f"{ids[0]}-{ids[-1]}" if contiguous and len(ids) > 1
                                          else ",".join(map(str, ids)))
        return env
