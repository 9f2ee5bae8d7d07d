"""CUDA target: eager, inductor and cudagraphs (torch.compile mode "reduce-overhead").

Every timed call is followed by torch.cuda.synchronize(), so a latency is the device's.
"""

from __future__ import annotations

from typing import Any

from bench.spec import Cell
from bench.targets.base import Availability, Target

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class CudaTarget(Target):
    name = "cuda"
    compilers = ("eager", "inductor", "cudagraphs")
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

    def describe(self) -> dict[str, Any]:
        import torch

        props = torch.cuda.get_device_properties(0)
        driver = ""
        try:
            import subprocess

            driver = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            pass
        return {
            "accelerator": "cuda",
            "device_name": props.name,
            "device_count": torch.cuda.device_count(),
            "device_memory_gib": round(props.total_memory / 2**30, 1),
            "cuda_version": torch.version.cuda,
            "driver_version": driver,
        }

    def sync(self) -> None:
        import torch

        torch.cuda.synchronize()

    def place(self, module, inputs: tuple, cell: Cell):
        if module is not None:
            module = module.to("cuda")
        return module, tuple(t.to("cuda") for t in inputs)

    def wrap(self, module, inputs: tuple, cell: Cell):
        import torch

        if cell.compiler == "eager":
            return module
        mode = "reduce-overhead" if cell.compiler == "cudagraphs" else None
        return torch.compile(module, backend="inductor", mode=mode, dynamic=False)
