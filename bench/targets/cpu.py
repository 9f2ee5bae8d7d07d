"""CPU target: eager, torch.jit.trace (the CPU analogue of Neuron's trace flow), inductor."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.plan.cell import Cell
from bench.results.env import cpu_model
from bench.targets.base import Target, usable_cpus


def default_threads(in_flight: int, cpus: int | None = None) -> int:
    """Intra-op threads per worker when the plan does not say: the cores split over the requests
    in flight, and with one request in flight (latency) one core left for everything else.

    An OpenMP team waits at every op for its slowest thread, so a neighbour that takes one of
    its cores stalls the whole team. Measured on a 2-vCPU VM (benchmarks/gate.py threads):
    bert-base-uncased b1 eager at 2 threads ran 155 ms quiet and 470 ms beside one busy loop,
    at 1 thread 263 ms and 235 ms; tiny-bert at 2 threads kept its p50 but its IQR went from
    10 % to 267 % of the median. Leaving a core free costs a quiet host a core's worth of speed
    (x1.7 on that VM) and keeps a shared runner's latency figures off the cliff; `--threads`
    gives all cores where the host is known to be yours.
    """
    cpus = usable_cpus() if cpus is None else cpus
    if in_flight <= 1:
        return max(1, cpus - 1)
    return max(1, cpus // in_flight)


class CpuTarget(Target):
    name = "cpu"
    verbs = ("infer", "generate", "train")
    kind = "cpu"
    compilers = ("eager", "jit", "inductor")
    train_compilers = ("eager", "inductor")  # a training step: the base's train_* hooks
    lazy_compilers = ("inductor",)
    saved_compilers = ("jit",)
    dtypes = ("fp32", "bf16")

    def resolve(self, cell: Cell) -> Cell:
        # Throughput default: at least two model processes (one request in flight each),
        # one per two cores on bigger hosts.
        # Processes rather than threads: eager PyTorch holds the GIL between ops, so two
        # threads in one process mostly wait for each other.
        if not cell.n_models:  # left open by the scenario (latency fixes one copy)
            cell = replace(cell, n_models=max(2, usable_cpus() // 2) if usable_cpus() >= 2 else 1)
        cell = super().resolve(cell)
        if cell.threads_per_worker is None and (cell.dp or 1) > 1:  # --dp ranks share the cores
            cell = replace(cell, threads_per_worker=max(1, usable_cpus() // cell.dp))
        if cell.threads_per_worker is None:
            cell = replace(cell, threads_per_worker=default_threads(cell.n_models * cell.workers_per_model))
        return cell

    def describe(self) -> dict[str, Any]:
        return {"accelerator": "none", "device_name": cpu_model()}

    def configure_cell(self, cell: Cell) -> None:
        import torch

        if cell.threads_per_worker:
            torch.set_num_threads(cell.threads_per_worker)

    def place(self, module, inputs: tuple, cell: Cell):
        return module, inputs

    def wrap(self, module, inputs: tuple, cell: Cell):
        if cell.compiler == "eager":
            return module
        import torch

        return torch.compile(module, backend="inductor", dynamic=False)

    def compile_artifact(self, module, inputs: tuple, cell: Cell, workdir: Path) -> None:
        import torch

        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings from transformers' shape checks
            traced = torch.jit.trace(module, inputs, check_trace=False)
        torch.jit.save(traced, str(workdir / "model.pt"))

    def load_artifact(self, workdir: Path, cell: Cell):
        import torch

        return torch.jit.load(str(workdir / "model.pt"), map_location="cpu").eval()
