"""What a cell asks Ray for: NeuronCores, GPUs, CPUs and an instance type (bench.execute.ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.plan.cell import Cell

INSTANCE = "instance:"  # custom resource prefix: a node advertises "instance:<type>"
NEURON_CORES = "neuron_cores"  # Ray's built-in resource name for AWS NeuronCores


def placed_id(cell: Cell, on: str | None) -> str:
    """The row id of `cell` placed on instance type `on` (the plain cell_id without `on`)."""
    return cell.cell_id if not on else f"{cell.cell_id}@{on}"


@dataclass(frozen=True)
class Need:
    """A cell's Ray resource request."""

    num_cpus: float
    num_gpus: float = 0
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def accelerated(self) -> bool:
        return self.num_gpus > 0 or NEURON_CORES in self.resources

    def options(self) -> dict[str, Any]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "resources": dict(self.resources)}

    def fits(self, node: dict[str, float]) -> bool:
        return (node.get("CPU", 0) >= self.num_cpus and node.get("GPU", 0) >= self.num_gpus
                and all(node.get(k, 0) >= v for k, v in self.resources.items()))

    def describe(self) -> str:
        parts = [f"{self.num_cpus:g} CPU"]
        if self.num_gpus:
            parts.append(f"{self.num_gpus:g} GPU")
        parts += [f"{v:g} {k}" for k, v in sorted(self.resources.items())]
        return ", ".join(parts)


def target_kind(target) -> str:
    """neuron, cuda or cpu (plug-in targets count as what they derive from)."""
    names = {c.__name__ for c in type(target).__mro__}
    if "NeuronTarget" in names:
        return "neuron"
    if "CudaTarget" in names:
        return "cuda"
    return "cpu"


def need_for(cell: Cell, on: str | None, nodes: list[dict[str, float]]) -> Need:
    """What the cell asks Ray for, given the live nodes' totals.

    - neuron: one NeuronCore per model copy (trace-dp: all the cores of the smallest
      eligible node, as it uses all free cores locally).
    - cuda: one GPU per model copy, up to what a node has.
    - CPUs, every cell: all the CPUs of the smallest node that can take it (and has at least
      the CPUs its threads use: n_models x workers x threads_per_worker for cpu, one per
      request thread otherwise). So a node measures one cell at a time, as the local
      executor does, and concurrent cells never disturb each other's numbers.
    - `on` adds one unit of `instance:<on>` (capacity 1 per node: exclusive again).
    """
    from bench import targets

    kind = target_kind(targets.get(cell.target))
    n, w = max(1, cell.n_models), max(1, cell.workers_per_model)
    eligible = [r for r in nodes if not on or r.get(INSTANCE + on, 0) >= 1]
    resources: dict[str, float] = {INSTANCE + on: 1} if on else {}
    gpus = 0
    if kind == "neuron":
        cores = [int(r.get(NEURON_CORES, 0)) for r in eligible if r.get(NEURON_CORES, 0) >= 1]
        resources[NEURON_CORES] = (min(cores) if cores else n) if cell.compiler == "trace-dp" else n
        host = n * w
    elif kind == "cuda":
        most = max((int(r.get("GPU", 0)) for r in eligible), default=0)
        gpus = max(1, min(n, most))
        host = n * w
    else:
        host = n * w * (cell.threads_per_worker or 1)
    sizes = sorted(int(r.get("CPU", 0)) for r in eligible if Need(1, gpus, resources).fits(r))
    big_enough = [n_cpus for n_cpus in sizes if n_cpus >= host]
    cpus = big_enough[0] if big_enough else (sizes[-1] if sizes else host)  # no node: skipped anyway
    return Need(max(1, cpus), gpus, resources)
