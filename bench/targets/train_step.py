"""Worker side of the `train` verb: build a card for training, step it, time the steps.

One optimizer step: zero the grads, then `grad_accum` times forward with labels (the loss
divided by grad_accum) and backward, then the optimizer's step (through the target:
`xm.optimizer_step` on XLA). Batches are built once, seeded, and moved to the device before
anything is timed, so a data loader is never in the figure.

How steps are timed, and why no step is synced
- The window is synced at both ends (`Target.train_window_sync`: torch.cuda.synchronize,
  torch.neuron.synchronize, xm.wait_device_ops); samples/s is the steps x global batch over
  that window, never a mean of per-step rates.
- Inside the window nothing waits for the device between steps: a sync per step would stop
  the host from queuing step k+1 while the device runs step k, and the figure would be of a
  serialised pipeline. On CPU a step runs where it is issued, so host timestamps around it
  are the step. On CUDA an event is recorded at each step's edges (`CudaEvents`) and read
  after the window's closing sync: device time per step, no sync between. On Neuron steps
  are timed by the host's cadence: once the device's queue is full the host issues a step
  as fast as the device finishes one, so the percentiles describe the steady pipeline, and
  the window (synced) says the rate.
- The first steps are warm-up, recorded apart: step 1 creates the optimizer's state, and a
  compiled step compiles on its first call (and again for a graph the first step did not
  take). `compile_s` is the first two steps' time minus two steady steps.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from typing import Any

import numpy as np

from bench.plan.cell import Cell

NUMERICS_STEPS = 3  # steps on a fixed batch the numerics check follows the loss over
# relative tolerance of step 0's loss against eager fp32 on CPU (and, 3x, of the loss after
# NUMERICS_STEPS steps): fp32 differs by summation order only; bf16 keeps 8 bits of mantissa
LOSS_TOLERANCE = {"fp32": 1e-3, "amp-bf16": 2e-2, "bf16": 5e-2, "auto-cast": 5e-2}
LEARNING_RATE = {"adamw": 1e-4, "sgd": 1e-2}


class HostTimer:
    """Steps timed by the host's clock around each step (CPU; the device's cadence elsewhere)."""

    kind = "host cadence"

    def before(self) -> None:
        pass

    def after(self) -> None:
        pass

    def durations(self, starts: list[int], ends: list[int]) -> np.ndarray:
        return np.asarray(ends, dtype=np.int64) - np.asarray(starts, dtype=np.int64)


class CudaEvents:
    """CUDA events recorded at each step's edges, read once the window is synced."""

    kind = "cuda events"

    def __init__(self) -> None:
        import torch

        self.pairs: list[tuple[Any, Any]] = []
        self.event = torch.cuda.Event  # looked up once, not inside the timed window

    def before(self) -> None:
        start = self.event(enable_timing=True)
        start.record()
        self.pairs.append((start, None))

    def after(self) -> None:
        end = self.event(enable_timing=True)
        end.record()
        self.pairs[-1] = (self.pairs[-1][0], end)

    def durations(self, starts: list[int], ends: list[int]) -> np.ndarray:
        return np.array([int(a.elapsed_time(b) * 1e6) for a, b in self.pairs], dtype=np.int64)


def optimizer_for(name: str, params):
    import torch

    if name == "sgd":
        return torch.optim.SGD(params, lr=LEARNING_RATE["sgd"], momentum=0.9)
    return torch.optim.AdamW(params, lr=LEARNING_RATE["adamw"])


class Trainer:
    """One model, its optimizer and its batches on a device: `step()` is one optimizer step."""

    def __init__(self, target, cell: Cell, model, batches: list[dict], device: str, parallel=None):
        import torch

        # target None: the reference, plain eager steps (no target's hooks)
        self.target, self.cell, self.device = target, cell, device
        bf16 = cell.precision == "bf16"
        model = model.to(device)
        if bf16:
            model = model.to(torch.bfloat16)
        self.model = model
        self.batches = [{k: _to(v, device, bf16) for k, v in b.items()} for b in batches]
        self.optimizer = optimizer_for(cell.optimizer or "adamw", model.parameters())
        # a data-parallel rank calls the model through its wrapper (DistributedDataParallel)
        model_call = parallel(model) if parallel else model
        self.call = target.train_compile(model_call, cell) if target is not None else model_call
        kind = device.split(":")[0]
        self.autocast = ((lambda: torch.autocast(device_type=kind, dtype=torch.bfloat16))
                         if cell.precision == "amp-bf16" else nullcontext)
        self.scale = 1.0 / len(self.batches)

    def step(self):
        """One optimizer step; returns the last micro-batch's loss (a device tensor, not synced)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = None
        for batch in self.batches:
            with self.autocast():
                loss = self.call(**batch).loss
            (loss * self.scale).backward()
        if self.target is None:
            self.optimizer.step()
            return loss
        self.target.train_optimizer_step(self.optimizer, self.cell)
        self.target.train_step_end(self.cell)
        return loss

    def grad_norm(self) -> float:
        import torch

        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        return float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0


def _to(value, device: str, bf16: bool):
    moved = value.to(device)
    if bf16 and moved.is_floating_point():
        import torch

        return moved.to(torch.bfloat16)
    return moved


def build(target, cell: Cell, seed: int = 0, parallel=None) -> Trainer:
    """The cell's trainer on the target's device, from the card's seeded weights (target None:
    eager on the CPU, the reference)."""
    from bench import models

    card = models.card(str(cell.model))
    model = models.build_for_training(card, cell.weights, image_size=cell.image_size, seed=seed)
    batches = models.training_batches(card, cell.grad_accum or 1, cell.batch_size, cell.seq_len, cell.image_size,
                                      seed=seed)
    return Trainer(target, cell, model, batches, target.train_device(cell) if target is not None else "cpu", parallel)


def timed_steps(trainer: Trainer, n: int) -> tuple[list[float], list[float]]:
    """`n` steps, each synced (warm-up only): (their losses, their seconds)."""
    losses, seconds = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        loss = trainer.step()
        trainer.target.train_window_sync(trainer.cell)
        losses.append(float(loss.detach().float().item()))
        seconds.append(time.perf_counter() - t0)
    return losses, seconds


def count_cpu_attention() -> None:
    """Teach FlopCounterMode the CPU's attention kernels. transformers' SDPA attention runs
    aten._scaled_dot_product_flash_attention_for_cpu (and its backward) on the CPU, which
    torch.utils.flop_counter's registry lacks (it has the CUDA flash, efficient and cuDNN
    kernels): its matmuls would count 0, and bert-base's step would lose 2.8 % of its FLOPs.
    They are counted with the registry's own formulas for the other kernels."""
    import torch
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten
    forward, backward = aten._scaled_dot_product_flash_attention_for_cpu, aten._scaled_dot_product_flash_attention_for_cpu_backward
    if forward in fc.flop_registry or forward.default in fc.flop_registry:
        return

    @fc.register_flop_formula(forward)
    def _forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return fc.sdpa_flop_count(query_shape, key_shape, value_shape)

    @fc.register_flop_formula(backward)
    def _backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def reference(cell: Cell, steps: int) -> tuple[list[float], float]:
    """Eager fp32 on CPU, same weights and batches: the losses of `steps` + 1 steps, and the
    FLOPs of one step counted by torch.utils.flop_counter.FlopCounterMode (matmuls,
    convolutions and attention, forward and backward; what is not a matrix op counts 0)."""
    from dataclasses import replace

    from torch.utils.flop_counter import FlopCounterMode

    cpu = replace(cell, target="cpu", compiler="eager", precision="fp32", dtype="fp32")
    trainer = build(None, cpu)
    count_cpu_attention()
    with FlopCounterMode(display=False) as counter:
        first = trainer.step()
    losses = [float(first.detach().item())]
    for _ in range(steps):
        losses.append(float(trainer.step().detach().item()))
    return losses, float(counter.get_total_flops())


def analytic_flops(cell: Cell) -> tuple[float | None, str]:
    """PaLM's estimate (appendix B, arXiv 2204.02311; nanoGPT's estimate_mfu, torchtitan's
    get_num_flop_per_token) of one step's FLOPs: (6 N + 12 L H Q T) per token, N the
    parameters without the embedding tables, L layers, H heads, Q the head size, T the tokens
    a sequence has; times the tokens of a step (batch x T x grad_accum). None for a model
    that is not a transformer (a CNN)."""
    import torch

    from bench import models

    card = models.card(str(cell.model))
    config = models.hf_config(card, cell.image_size)
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    if not all(isinstance(v, int) for v in (layers, heads, hidden)):
        return None, ""
    if card.input == "image":
        patch = getattr(config, "patch_size", None)
        if not isinstance(patch, int):
            return None, ""
        tokens = (int(cell.image_size or config.image_size) // patch) ** 2 + 1
    else:
        tokens = int(cell.seq_len or 0)
    with torch.device("meta"):
        model = models.build_for_training(card, "random", image_size=cell.image_size)
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    n = sum(p.numel() for p in model.parameters()) - embedding
    per_token = 6 * n + 12 * layers * heads * (hidden // heads) * tokens
    step_tokens = cell.batch_size * tokens * (cell.grad_accum or 1)
    return float(per_token * step_tokens), "(6N + 12LHQT) x tokens, N without embeddings (PaLM app. B)"


def numerics(cell: Cell, mine: list[float], ref: list[float]) -> tuple[bool, str]:
    """Step 0's loss within the precision's tolerance of the reference's, and the loss after
    the check's steps moved the way the reference's did (and within 3x the tolerance)."""
    tol = LOSS_TOLERANCE.get(cell.precision or "fp32", 5e-2)
    if not all(math.isfinite(v) for v in mine):
        return False, f"the loss is not finite: {mine}"
    rel0 = abs(mine[0] - ref[0]) / max(abs(ref[0]), 1e-12)
    if rel0 > tol:
        return False, (f"step 0's loss {mine[0]:.6g} differs from eager fp32 on CPU ({ref[0]:.6g}) by "
                       f"{rel0:.2%} (tolerance {tol:.1%} for {cell.precision})")
    moved, ref_moved = mine[-1] - mine[0], ref[-1] - ref[0]
    relk = abs(mine[-1] - ref[-1]) / max(abs(ref[-1]), 1e-12)
    if (abs(ref_moved) > tol * abs(ref[0]) and np.sign(moved) != np.sign(ref_moved)) or relk > 3 * tol:
        return False, (f"after {len(mine) - 1} steps the loss moved {moved:+.4g} (to {mine[-1]:.6g}) where eager "
                       f"fp32 on CPU moved {ref_moved:+.4g} (to {ref[-1]:.6g})")
    return True, ""


def run_window(trainer: Trainer, cell: Cell, stop_event, leader: bool) -> dict[str, np.ndarray]:
    """Warm-up steps for the round's warmup_s, then steps until the stopping rule says so,
    in a window synced at both ends; the arrays summarise() reads (bench.targets.train)."""
    from bench.stats.stop import StopRule

    m = cell.measure
    rule = StopRule(m.min_duration_s, m.max_s, m.min_samples, m.target_ci)
    begin = time.perf_counter_ns()
    warm = 0
    while time.perf_counter_ns() - begin < m.warmup_s * 1e9:
        trainer.step()
        warm += 1

    def done(starts: list[int], ends: list[int], elapsed_s: float) -> bool:
        if stop_event is not None and stop_event.is_set():
            return True
        return leader and rule.decide(len(ends), elapsed_s, lambda: np.asarray(ends) - np.asarray(starts))

    try:
        out = window(trainer, cell, done)
    finally:
        if stop_event is not None and leader:
            stop_event.set()
    out["warmup_steps"] = np.array(warm)
    return out


def window(trainer: Trainer, cell: Cell, done) -> dict[str, np.ndarray]:
    """Steps until `done(starts, ends, elapsed_s)`, in a window synced at both ends."""
    target = trainer.target
    pc = time.perf_counter_ns
    timer = target.step_timer(cell)
    target.train_window_sync(cell)
    compiled = target.train_compiles(cell)
    starts: list[int] = []
    ends: list[int] = []
    loss = None
    w0 = pc()
    while True:
        s = pc()
        timer.before()
        loss = trainer.step()
        timer.after()
        e = pc()
        starts.append(s)
        ends.append(e)
        if done(starts, ends, (e - w0) / 1e9):
            break
    target.train_window_sync(cell)
    w1 = pc()
    after = target.train_compiles(cell)
    gaps = np.asarray(starts[1:], dtype=np.int64) - np.asarray(ends[:-1], dtype=np.int64)
    out = {
        "start_ns": np.asarray(starts, dtype=np.int64), "end_ns": np.asarray(ends, dtype=np.int64),
        "latency_ns": timer.durations(starts, ends), "window_ns": np.array([w0, w1], dtype=np.int64),
        "host_gap_ns_mean": np.array(float(gaps.mean()) if gaps.size else 0.0),
        "loss_last": np.array(float(loss.detach().float().item()) if loss is not None else math.nan),
        "grad_norm": np.array(trainer.grad_norm()),
        "recompiles": np.array(-1 if compiled is None or after is None else after - compiled),
        "step_timing": np.array(timer.kind),
    }
    out.update({k: np.array(v) for k, v in target.train_memory(cell).items()})
    return out
