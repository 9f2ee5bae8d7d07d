"""A training step on Neuron: TorchNeuron's device `neuron` (Trn2/Trn3), or PyTorch/XLA (Trn1,
Neuron 2.29 and earlier), as the NeuronTarget's train_* hooks (bench.targets.base).

Sources (aws-neuron/aws-neuron-sdk docs source, and the docs site for TorchNeuron):
- TorchNeuron is a public beta in 2.33 on Trn2 and Trn3 (release-notes/components/torchneuron.rst:
  "It is supported on Trainium 2 (trn2) and Trainium 3 (trn3) instances"); its device is
  `neuron` (torch/reference/api/torch-neuron-module: "torch.neuron becomes the device module
  for the neuron device ... It plays the role that torch.cuda plays for CUDA devices").
- `native-compile` is `torch.compile(model, backend="neuron", fullgraph=True)`
  (torch/compile/how-to-optimize-with-torch-compile: "Use fullgraph=True so graph breaks are
  raised"; "Time a whole training iteration, not only the compiled forward pass").
- Memory: "The Neuron allocator is asynchronous. Always call torch.neuron.synchronize() before
  you read any memory statistic" (torch/guides/memory-profiling-guide); max_memory_allocated /
  max_memory_reserved as torch.cuda's.
- Compiles: torch.neuron.get_dynamo_metrics(), one entry per compiled graph
  (torch/compile/reference-torch-compile).
- dp: `dist.init_process_group(backend="neuron", init_method="env://", ...)`
  (torch/guides/torch-distributed); the backend gives each rank NEURON_RT_VISIBLE_CORES =
  LOCAL_RANK unless it is set, and the device must not be touched before the group exists.
- PyTorch/XLA training: "Starting with Neuron Release 2.30.0, PyTorch/XLA is no longer
  supported for training workloads on Trainium. PyTorch 2.9 was the last version based on the
  PyTorch/XLA backend for training." (about-neuron/announcements/neuron2.x/
  announce-no-support-pytorch-xla-training.rst). torch-neuronx 2.9.0.2.12.* shipped with
  2.28 (about-neuron/benchmarks/trn1/training_data_encoder.csv), 2.9.0.2.13.* with 2.29
  (release-notes/components/pytorch.rst), 2.9.0.2.15.* with 2.31: the fifth number says the
  release, and 14 or more is 2.30 or later.
- The XLA loop: `torch_xla.device()`, `xm.optimizer_step(optimizer)` ("adds gradient
  synchronization across workers before taking the optimizer step"), `torch_xla.sync()` at
  the step's end (2.9's name for xm.mark_step), `xm.wait_device_ops()` to wait for the
  device (archive/nxd-training/pytorch-neuron-programming-guide.rst; introducing-pytorch-2-9.rst;
  pytorch/xla torch_xla/core/xla_model.py); compiles are
  `torch_xla.debug.metrics.metric_data("CompileTime")[0]` (None before the first).
"""

from __future__ import annotations

import re

from bench.errors import UsageError
from bench.plan.cell import Cell

NATIVE = ("native-eager", "native-compile")  # TorchNeuron's compilers, inference and training alike
XLA = "xla"
TORCHNEURON_FAMILIES = ("trn2", "trn2n", "trn2u", "trn3", "trn3u")  # where TorchNeuron runs
XLA_TRAIN_FAMILIES = ("trn1", "trn1n")
LAST_XLA_TRAINING_RELEASE = 13  # torch-neuronx 2.9.0.2.13.*: Neuron 2.29


def xla_refusal(family: str, torch_neuronx: str) -> str:
    """Why `-c xla -s train` cannot run here ('' when it can): Trn1 on Neuron 2.29 or earlier."""
    if family not in XLA_TRAIN_FAMILIES:
        return (f"-c xla trains through PyTorch/XLA on Trn1 with Neuron 2.29 or earlier (to reproduce the "
                f"published trn1 figures); this host is {family or 'not a Neuron instance'}: use native-eager or "
                f"native-compile (TorchNeuron) on Trn2/Trn3")
    parts = re.match(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)\.(\d+)", torch_neuronx or "")
    if parts is None:
        return (f"-c xla needs the PyTorch/XLA torch-neuronx of Neuron 2.29 or earlier (2.9.0.2.13.* or older); "
                f"found {torch_neuronx or 'none'}")
    major, minor, _, _, release = (int(v) for v in parts.groups())
    if (major, minor) >= (2, 9) and release > LAST_XLA_TRAINING_RELEASE:
        return (f"torch-neuronx {torch_neuronx} is Neuron 2.30 or later, where PyTorch/XLA training is no longer "
                f"supported (announce-no-support-pytorch-xla-training.rst): use Neuron 2.29 or earlier for -c xla")
    return ""


class NeuronTraining:
    """The NeuronTarget's training-step hooks (mixed into bench.targets.neuron.NeuronTarget)."""

    train_compilers = (*NATIVE, XLA)

    def check_train_stack(self, cell: Cell) -> None:
        from bench.results import env as host_env
        from bench.targets.neuron import inventory, sdk

        family = inventory.instance_family(host_env.instance_type())
        if cell.compiler == XLA:
            why = xla_refusal(family, sdk.dist_version("torch-neuronx"))
            if why:
                raise UsageError(why)
        elif family and family not in TORCHNEURON_FAMILIES:
            raise UsageError(f"{cell.compiler} trains through TorchNeuron, which runs on Trn2 and Trn3 only "
                             f"(torchneuron.rst), not on {family}")
        if cell.precision == "auto-cast" and cell.compiler != XLA:
            raise UsageError("--precision auto-cast is neuronx-cc's, in the XLA flow: with TorchNeuron use "
                             "amp-bf16 (torch.autocast(device_type='neuron')) or bf16")

    def dp_capacity(self) -> tuple[int | None, str]:
        """Free NeuronCores per neuron-ls; None where there is no inventory (a host without
        devices plans the cells, which are then skipped as unavailable)."""
        from bench.targets.neuron import inventory

        inv = inventory.try_neuron_ls() if inventory.device_paths() else None
        return (len(inv.free_cores()) if inv is not None else None), "free NeuronCores"

    def train_peak(self, cell: Cell) -> tuple[float | None, str]:
        """A rank's NeuronCore's share of its chip, at the runtime's LNC (neuron-ls, cached)."""
        from bench.results import env as host_env
        from bench.targets import peaks
        from bench.targets.neuron import inventory

        inv = inventory.try_neuron_ls()
        return peaks.per_device("neuron", None, cell.precision or "fp32",
                                inventory.instance_family(host_env.instance_type()), inv.lnc if inv else None)

    def train_backend(self, cell: Cell) -> tuple[str, str]:
        return ("xla", "xla://") if cell.compiler == XLA else ("neuron", "env://")

    def train_device(self, cell: Cell) -> str:
        if cell.compiler == XLA:
            import torch_xla

            return str(torch_xla.device())
        return "neuron"

    def train_compile(self, model, cell: Cell):
        if cell.compiler != "native-compile":
            return model  # eager, or XLA (which traces the step lazily and compiles at sync)
        import torch

        return torch.compile(model, backend="neuron", fullgraph=True)

    def train_parallel(self, model, cell: Cell):
        if cell.compiler == XLA:
            return model  # xm.optimizer_step all-reduces the gradients
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def train_optimizer_step(self, optimizer, cell: Cell) -> None:
        if cell.compiler == XLA:
            import torch_xla.core.xla_model as xm

            xm.optimizer_step(optimizer)
        else:
            optimizer.step()

    def train_step_end(self, cell: Cell) -> None:
        if cell.compiler == XLA:
            import torch_xla

            torch_xla.sync()

    def train_window_sync(self, cell: Cell) -> None:
        if cell.compiler == XLA:
            import torch_xla.core.xla_model as xm

            xm.wait_device_ops()
        else:
            import torch

            torch.neuron.synchronize()

    def train_compiles(self, cell: Cell) -> int | None:
        if cell.compiler == XLA:
            import torch_xla.debug.metrics as met

            data = met.metric_data("CompileTime")
            return int(data[0]) if data else 0
        if cell.compiler == "native-eager":
            return 0
        import torch

        return len(torch.neuron.get_dynamo_metrics())

    def train_memory(self, cell: Cell) -> dict[str, float]:
        if cell.compiler == XLA:
            return {}
        import torch

        torch.neuron.synchronize()  # the allocator is asynchronous: sync before reading
        return {"peak_mem_allocated_mib": torch.neuron.max_memory_allocated() / 2**20,
                "peak_mem_reserved_mib": torch.neuron.max_memory_reserved() / 2**20}
