"""One rank of a data-parallel training cell: the program torch's elastic launcher (or
torchrun, across nodes) starts for `--dp N` (bench.targets.train_dist says how).

It joins the process group with its target's backend before touching the device (TorchNeuron's
backend pins the rank's core at init), takes the numerics check's steps, agrees with rank 0
on the warm-up and measured step counts (every step all-reduces, so every rank takes the
same), and times its window; `rank<R>.npz` in --out holds its arrays.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from bench.plan.cell import Cell, Measure


def run_rank(cell: Cell) -> dict[str, np.ndarray]:
    """This rank's window (inside a process the launcher started)."""
    import torch.distributed as dist

    from bench import targets
    from bench.targets.train_step import NUMERICS_STEPS, build, timed_steps, window

    target = targets.get(cell.target)
    target.setup_process(int(os.environ.get("LOCAL_RANK", "0")))
    # before the device is touched: TorchNeuron's backend pins the rank's core at init
    backend, init_method = target.train_backend(cell)
    dist.init_process_group(backend=backend, init_method=init_method)
    try:
        target.configure_cell(cell)
        trainer = build(target, cell, parallel=lambda m: target.train_parallel(m, cell))
        # the numerics check's steps: the optimizer's state, a compile (warm-up, recorded apart)
        losses, seconds = timed_steps(trainer, NUMERICS_STEPS + 1)
        # every step all-reduces, so every rank takes the same steps: rank 0 says how many
        m = cell.measure
        step_s = max(min(seconds[1:]), 1e-6)
        wanted = [math.ceil(m.warmup_s / step_s),
                  max(m.min_samples, min(math.ceil(m.min_duration_s / step_s), math.floor(m.max_s / step_s)))]
        dist.broadcast_object_list(wanted, src=0)
        for _ in range(wanted[0]):
            trainer.step()
        dist.barrier()
        out = window(trainer, cell, lambda starts, ends, elapsed: len(ends) >= wanted[1])
        out.update(warmup_steps=np.array(len(seconds) + wanted[0]), warm_losses=np.array(losses),
                   warm_seconds=np.array(seconds))
        return out
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.targets.train_rank", allow_abbrev=False,
                                     description="one rank of a data-parallel training cell (under torchrun)")
    parser.add_argument("--cell", required=True, help='JSON: {"key": {...}, "measure": {...}}')
    parser.add_argument("--out", required=True, help="the directory each rank writes rank<R>.npz into")
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.cell).read_text())
    cell = Cell.from_key(spec["key"], measure=Measure(**spec.get("measure", {})))
    arrays = run_rank(cell)
    np.savez(Path(args.out) / f"rank{int(os.environ.get('RANK', '0'))}.npz", **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
