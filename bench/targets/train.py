"""The `train` verb: a request is one optimizer step of the card's training task on the
target's device (cpu, cuda, neuron); bench.targets.train_step says how steps are built and
timed, bench.targets.train_dist how `--dp N` ranks are launched.

Plan time: a cell gets `grad_accum` (1), `optimizer` (adamw), `precision` (fp32, or bf16
when the dtype is) and `dp` (1); `check` refuses what cannot train, in one line each.
Worker side: `prepare` builds the trainer, runs the numerics check's steps (they are the
first warm-up steps: step 1 creates the optimizer's state, a compiled step compiles) against
eager fp32 on CPU, and counts one step's FLOPs; `closed` times a window of steps (on dp
ranks when asked). Orchestrator side: `summarise` turns the window into the row's columns.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.plan.cell import Cell, UserModel
from bench.stats.summary import latency_summary
from bench.targets.requests import Column, PrepareReport, Requests, WorkerContext

OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("fp32", "amp-bf16", "bf16", "auto-cast")
SCALARS = ("warmup_steps", "host_gap_ns_mean", "loss_last", "grad_norm", "recompiles", "step_timing",
           "peak_rss_mib", "peak_mem_allocated_mib", "peak_mem_reserved_mib")


def global_batch(cell: Cell) -> int:
    return cell.batch_size * (cell.grad_accum or 1) * (cell.dp or 1)


def _precision_label(row: dict[str, Any]) -> str:
    """'amp-bf16 adamw x4 dp2': precision, optimizer, micro-batches a step, ranks."""
    accum, dp = row.get("grad_accum") or 1, row.get("dp") or 1
    return (f"{row.get('precision') or ''} {row.get('optimizer') or ''}" + (f" x{int(accum)}" if accum > 1 else "")
            + (f" dp{int(dp)}" if dp > 1 else ""))


class TrainRequests(Requests):
    """One optimizer step of the card's training task (bench.targets.train_step)."""

    verb = "train"
    uses = ("grad_accum", "optimizer", "precision", "dp")
    # the step's p50 and the samples/s are the table's own latency and throughput columns
    columns = (Column("train", _precision_label), Column("MFU %", "mfu_pct", 1),
               Column("dp scaling", "scaling_efficiency", 2))
    search_bound = "(no max-rate search for training steps)"

    def plan(self, cell: Cell, profile: str) -> Cell:
        precision = cell.precision or ("bf16" if cell.dtype == "bf16" else "fp32")
        dtype = "bf16" if precision == "bf16" else "fp32"
        if cell.precision and cell.dtype not in ("fp32", dtype):
            raise UsageError(f"--precision {precision} trains {dtype} weights: drop -d {cell.dtype}")
        return replace(cell, grad_accum=cell.grad_accum or 1, optimizer=cell.optimizer or "adamw",
                       precision=precision, dtype=dtype, dp=cell.dp or 1, n_models=1, workers_per_model=1)

    def check(self, cell: Cell, profile: str) -> None:
        from bench import models

        if isinstance(cell.model, UserModel):
            raise UsageError("-s train needs a model card with a training task, not a user module")
        card = models.card(str(cell.model))
        if card.train_task is None:
            raise UsageError(f"{card.name} (task {card.task}) has no training task: -s train needs a card of task "
                             f"{', '.join(models.TRAIN_TASKS)}")
        for name, value in (("--grad-accum", cell.grad_accum), ("--dp", cell.dp)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if cell.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {cell.optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
        if cell.precision not in PRECISIONS:
            raise UsageError(f"unknown precision {cell.precision!r} (choose from {', '.join(PRECISIONS)})")
        # what the target can train with (compilers, precision, ranks) it checks itself, in
        # resolve (bench.targets.base.Target.check_train)

    # -- worker side ---------------------------------------------------------------------------

    def prepare(self, ctx: WorkerContext, cell: Cell, leader: bool, cache_root: Path) -> PrepareReport:
        import time
        from types import SimpleNamespace

        from bench.targets import train_step

        device = ctx.describe()  # the first cell of this process: its start-up ends here
        report = PrepareReport(ready_at=time.perf_counter() if device is not None else None, device=device)
        target = ctx.target
        t0 = time.perf_counter()
        target.configure_cell(cell)  # the cell's threads, for the reference's steps too
        ref_losses, flops = train_step.reference(cell, train_step.NUMERICS_STEPS)
        analytic, formula = train_step.analytic_flops(cell)
        report.build_s = time.perf_counter() - t0
        trainer = None
        if (cell.dp or 1) == 1:  # dp ranks build their own (TorchNeuron pins a rank's core at init)
            t1 = time.perf_counter()
            trainer = train_step.build(target, cell)  # built, on the device, compiled lazily
            report.load_s = time.perf_counter() - t1
            losses, seconds = train_step.timed_steps(trainer, train_step.NUMERICS_STEPS + 1)
            report.first_call_ms, report.compile_s = first_steps(seconds)
            report.accuracy_ok, report.accuracy_error = train_step.numerics(cell, losses, ref_losses)
        report.reference_source = "computed"
        peak, source = target.train_peak(cell)
        report.extra = {
            "ref_loss_first": ref_losses[0], "ref_loss_moved": ref_losses[-1] - ref_losses[0], "flops_per_step": flops,
            "flops_analytic_per_step": analytic, "flops_formula": formula,
            "peak_tflops": peak * (cell.dp or 1) if peak else None, "peak_source": source,
        }
        if trainer is not None:
            report.extra.update(loss_first=losses[0], loss_moved=losses[-1] - losses[0])
        ctx.prepared = SimpleNamespace(fn=trainer, inputs=())  # what the worker keeps for the cell's rounds
        return report

    def closed(self, ctx: WorkerContext, cell: Cell, in_flight: int, leader: bool) -> dict[str, np.ndarray]:
        from bench.targets import train_step

        if (cell.dp or 1) > 1:
            import resource

            from bench.targets.train_dist import launch

            def children_cpu() -> float:
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                return usage.ru_utime + usage.ru_stime

            before = children_cpu()
            ranks = launch(cell)
            out = dict(ranks[0])  # with its warm-up's losses and times (warm_losses, warm_seconds)
            # the ranks' CPU is the cell's, not a neighbour's (the machine's check reads it)
            out["sut_cpu_s"] = np.array(children_cpu() - before)
            out["rank_windows_ns"] = np.array([int(r["window_ns"][1] - r["window_ns"][0]) for r in ranks])
            out["rank_steps"] = np.array([len(r["latency_ns"]) for r in ranks])
            return out
        return train_step.run_window(ctx.prepared.fn, cell, ctx.stop_event, leader)

    def no_profile(self, cell: Cell) -> str:
        if (cell.dp or 1) > 1:
            return f"--dp {cell.dp}: the ranks are processes of their own; profile the step at --dp 1"
        return ""

    def profile_pass(self, ctx: WorkerContext, cell: Cell, capture) -> int:
        """One optimizer step (zero grads, every micro-batch's forward and backward, the step),
        waited for at its end as a measured window is."""
        from bench.targets.profiling import ProfileRefused

        trainer = ctx.prepared.fn
        if trainer is None:
            raise ProfileRefused(self.no_profile(cell))
        with capture.request():
            trainer.step()
            ctx.target.train_window_sync(cell)
        return 1

    # -- orchestrator side -----------------------------------------------------------------------

    def summarise(self, parts, cell: Cell, profile: str):
        p = parts[0]
        latency = np.asarray(p["latency_ns"], dtype=np.int64)
        n = int(latency.size)
        row: dict[str, Any] = {"samples": n, "train_steps": n}
        for name in SCALARS:
            if name in p:
                value = np.asarray(p[name]).item()
                row[name] = value if not isinstance(value, float) or math.isfinite(value) else None
        warm = row.pop("warmup_steps", 0)
        row["warmup_steps"] = row["warmup_samples"] = int(warm)
        row["host_gap_us_mean"] = (row.pop("host_gap_ns_mean", None) or 0.0) / 1e3
        if row.get("recompiles") == -1:
            row["recompiles"] = None
        w0, w1 = (int(v) for v in p["window_ns"])
        window_s = (w1 - w0) / 1e9
        if "rank_windows_ns" in p:  # dp: the slowest rank's window holds every rank's steps
            windows = np.asarray(p["rank_windows_ns"]) / 1e9
            window_s = float(windows.max())
            each = cell.batch_size * (cell.grad_accum or 1) * np.asarray(p["rank_steps"]) / windows
            row["samples_per_s_per_rank"] = json.dumps([round(float(v), 3) for v in each])
        if "warm_losses" in p:  # dp: rank 0's first steps are the numerics check's and compile's
            losses = [float(v) for v in p["warm_losses"]]
            row["first_call_ms"], row["compile_s"] = first_steps([float(v) for v in p["warm_seconds"]])
            row.update(loss_first=losses[0], loss_moved=losses[-1] - losses[0], loss_check=json.dumps(losses))
        row["duration_s"] = row["steady_window_s"] = window_s
        if n and window_s > 0:
            row["throughput_avg"] = n * global_batch(cell) / window_s
            row.update(latency_summary(latency))
        loss = row.get("loss_last")
        if n and (loss is None or row.get("grad_norm") is None):
            row["fatal"] = f"the loss or the gradients are not finite after the window (loss {loss})"
        return row, {"latency_ns": latency, "start_ns": np.asarray(p["start_ns"], dtype=np.int64)}

    def finish(self, row: dict[str, Any], cell: Cell) -> dict[str, Any]:
        return finish(row, cell)

    def stability(self, summary: dict[str, Any], profile: str) -> str:
        from bench.stats.stability import instability

        reasons = [instability(summary, "latency")]
        if summary.get("recompiles"):
            reasons.append(f"{summary['recompiles']} recompiles inside the measured window")
        return "; ".join(r for r in reasons if r)


def first_steps(seconds: list[float]) -> tuple[float, float]:
    """(the first step in ms, compile_s: the first two steps minus two steady ones)."""
    steady = min(seconds[2:]) if len(seconds) > 2 else seconds[-1]
    return seconds[0] * 1e3, max(0.0, seconds[0] + seconds[1] - 2 * steady)


def finish(row: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """The columns that follow from the pooled figures (one round's, or every round's); a dp
    cell's numerics check (rank 0's first losses against the reference's)."""
    out = dict(row)
    checked = out.pop("loss_check", None)
    if checked and out.get("ref_loss_first") is not None:
        from bench.targets.train_step import numerics

        losses = json.loads(checked)
        ref = [out["ref_loss_first"], out["ref_loss_first"] + (out.get("ref_loss_moved") or 0.0)]
        ok, why = numerics(cell, losses, ref)
        if not ok:
            out["inaccurate"] = why
    for q in ("p50", "p90", "p99"):
        if out.get(f"latency_ms_{q}") is not None:
            out[f"step_ms_{q}"] = out[f"latency_ms_{q}"]
    rate = out.get("throughput_avg")
    out["global_batch"] = global_batch(cell)
    if not rate:
        return out
    out["samples_per_s"] = rate
    if cell.seq_len:
        out["tokens_per_s"] = rate * cell.seq_len
        out["tokens_per_s_per_device"] = out["tokens_per_s"] / (cell.dp or 1)
    flops = out.get("flops_per_step")
    if flops:
        out["tflops_achieved"] = flops * (cell.dp or 1) * rate / global_batch(cell) / 1e12
        peak = out.get("peak_tflops")
        out["mfu_pct"] = 100 * out["tflops_achieved"] / peak if peak else None
    return out


TRAIN = TrainRequests()
