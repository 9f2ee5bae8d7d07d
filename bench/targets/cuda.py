"""CUDA target: eager, inductor and cudagraphs (torch.compile mode "reduce-overhead").

Every timed call is followed by torch.cuda.synchronize(), so a latency is the device's.
Model copies (`n_models`) are spread over the visible GPUs round-robin, one process each,
through CUDA_VISIBLE_DEVICES set before the worker imports torch.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from bench.errors import UsageError
from bench.plan.cell import Cell
from bench.targets.base import Availability, Target, to_device

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _gpu_count() -> int:
    import torch

    try:
        return torch.cuda.device_count()
    except RuntimeError:
        return 0


def _driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
        return out.strip().splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return ""


class CudaTarget(Target):
    name = "cuda"
    verbs = ("infer", "generate", "train")
    kind = "cuda"
    train_compilers = ("eager", "inductor")
    ray_resource = "GPU"  # one GPU per model copy, up to what a node has
    compilers = ("eager", "inductor", "cudagraphs")
    lazy_compilers = ("inductor", "cudagraphs")
    dtypes = ("fp32", "bf16", "fp16")

    def availability(self) -> Availability:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover
            return Availability(False, f"torch is not importable: {exc}")
        if torch.version.cuda is None:
            return Availability(False, f"torch {torch.__version__} is a CPU-only build (no CUDA)")
        if not torch.cuda.is_available():
            return Availability(False, "torch.cuda.is_available() is False: no CUDA device or driver")
        return Availability(True)

    def resolve(self, cell: Cell) -> Cell:
        cell = super().resolve(cell)
        if cell.compiler == "cudagraphs" and cell.workers_per_model > 1:
            # CUDA graph trees are per thread: concurrent replays from several threads of one
            # process are not supported; use more model processes instead.
            raise UsageError(f"{cell.label}: cudagraphs runs one request at a time per process; "
                             "use --n-models for concurrency (with --workers-per-model 1)")
        return cell

    def worker_env(self, cell: Cell, model_index: int) -> dict[str, str]:
        if cell.n_models <= 1:
            return {}
        visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        if not visible:
            visible = [str(i) for i in range(_gpu_count())]
        if len(visible) <= 1:
            return {}
        return {"CUDA_VISIBLE_DEVICES": visible[model_index % len(visible)]}

    def describe(self) -> dict[str, Any]:
        import torch

        props = torch.cuda.get_device_properties(0)
        return {
            "accelerator": "cuda",
            "device_name": props.name,
            "device_count": torch.cuda.device_count(),
            "device_memory_gib": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}",
            "cuda_version": torch.version.cuda,
            "driver_version": _driver_version(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        }

    def configure_cell(self, cell: Cell) -> None:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (tf32 would be a dtype of its own)
        torch.backends.cudnn.allow_tf32 = False

    def profiler(self, cell: Cell, out_dir):
        """torch.profiler with CUDA activity: operators ranked by their kernels' device time."""
        from bench.targets.profiling import TorchCapture

        return TorchCapture(out_dir, "cuda")

    def sync(self) -> None:
        import torch

        torch.cuda.synchronize()

    def place(self, module, inputs: tuple, cell: Cell):
        return to_device(module, inputs, "cuda")

    # -- a training step: on the rank's GPU, steps timed by CUDA events (no sync between) ----

    def dp_capacity(self) -> tuple[int | None, str]:
        return (_gpu_count() if self.availability().ok else None), "GPUs"

    def train_backend(self, cell: Cell) -> tuple[str, str]:
        return "nccl", "env://"

    def train_peak(self, cell: Cell) -> tuple[float | None, str]:
        import torch

        from bench.targets import peaks

        return peaks.per_device(self.kind, torch.cuda.get_device_name(), cell.precision or "fp32")

    def train_device(self, cell: Cell) -> str:
        import torch

        local = int(os.environ.get("LOCAL_RANK", "0"))  # a --dp rank holds one GPU
        torch.cuda.set_device(local)
        return f"cuda:{local}"

    def train_parallel(self, model, cell: Cell):
        import torch
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])

    def train_memory(self, cell: Cell) -> dict[str, float]:
        import torch

        torch.cuda.synchronize()
        return {"peak_mem_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
                "peak_mem_reserved_mib": torch.cuda.max_memory_reserved() / 2**20}

    def step_timer(self, cell: Cell):
        from bench.targets.train_step import CudaEvents

        return CudaEvents()

    def wrap(self, module, inputs: tuple, cell: Cell):
        import torch

        if cell.compiler == "eager":
            return module
        mode = "reduce-overhead" if cell.compiler == "cudagraphs" else None
        return torch.compile(module, backend="inductor", mode=mode, dynamic=False)
