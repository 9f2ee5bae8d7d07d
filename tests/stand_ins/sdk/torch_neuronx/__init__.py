"""TEST STAND-IN for `torch_neuronx`. It is NOT the Neuron SDK and compiles nothing.

It exists only so that CI, which has no Neuron device or SDK, can check that trnbench
calls the SDK the way its documentation says (contract tests, tests/test_neuron_contract.py):

- `trace` has the documented signature
  `trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None,
  compiler_args=None, partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False)`
  (https://awsdocs-neuron.readthedocs-hosted.com/en/latest/frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-trace.html),
  rejects unknown keywords and keyword arguments passed positionally, requires `--target`
  with `cpu_backend=True` (as documented), and returns `torch.jit.trace` of the module on CPU
  (a ScriptModule that `torch.jit.save` / `torch.jit.load` handle) plus a fake compiler log.
- `DataParallel(model, device_ids=None, dim=0, set_dynamic_batching=True)` splits the batch
  over the process's visible cores and runs the chunks one after another on CPU.

Every call, and the import itself (with the worker's NEURON_* environment and command line),
is appended as one JSON line to $TRNBENCH_STANDIN_LOG when that is set.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import time

import torch

__version__ = "0.0.0+standin"
STAND_IN = True


def _record(event: str, **data) -> None:
    path = os.environ.get("TRNBENCH_STANDIN_LOG")
    if not path:
        return
    rec = {"event": event, "pid": os.getpid(), "ppid": os.getppid(), "time": time.time(), **data}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, default=str) + "\n")


_record("import",
        env={k: os.environ.get(k) for k in ("NEURON_RT_VISIBLE_CORES", "NEURON_LOGICAL_NC_CONFIG",
                                            "NEURON_PROCESS_TAG", "TRNBENCH_COMPILE_ONLY")},
        argv=list(getattr(sys, "orig_argv", sys.argv)))


def _describe(value):
    if isinstance(value, torch.Tensor):
        return {"shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, (tuple, list)):
        return [_describe(v) for v in value]
    if isinstance(value, torch.nn.Module):
        return f"<module {type(value).__name__}>"
    return value


def _recorded(fn):
    """Record the call: how many positional arguments and exactly which keywords, with values."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        sig.bind(*args, **kwargs)  # TypeError for an unknown keyword, like the real function
        _record(fn.__name__, n_positional=len(args), positional=[_describe(a) for a in args],
                kwargs={k: _describe(v) for k, v in kwargs.items()})
        return fn(*args, **kwargs)

    return wrapper


@_recorded
def trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None,  # noqa: B006 - documented default
          compiler_args=None, partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False):
    if _:
        raise TypeError("stand-in torch_neuronx.trace: pass keyword arguments by name "
                        "(positional kwargs are deprecated since torch-neuronx for Neuron 2.15)")
    args = compiler_args.split() if isinstance(compiler_args, str) else list(compiler_args or [])
    if cpu_backend and not any(a == "--target" or a.startswith("--target=") for a in args):
        raise ValueError("cpu_backend=True needs the --target flag in compiler_args")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    traced = torch.jit.trace(func, tuple(example_inputs), check_trace=False)
    if compiler_workdir:
        os.makedirs(compiler_workdir, exist_ok=True)
        with open(os.path.join(compiler_workdir, "log-neuron-cc.txt"), "w", encoding="utf-8") as f:
            f.write("STAND-IN torch_neuronx (tests/stand_ins): neuronx-cc did not run.\n"
                    f"compiler_args: {args}\ncpu_backend: {cpu_backend}\n")
        with open(os.path.join(compiler_workdir, "graph.neff"), "wb") as f:
            f.write(b"stand-in: not a NEFF")
    return traced


def _visible_cores() -> int:
    visible = os.environ.get("NEURON_RT_VISIBLE_CORES", "")
    if "-" in visible:
        lo, hi = visible.split("-", 1)
        return int(hi) - int(lo) + 1
    return len([v for v in visible.split(",") if v.strip()]) or 1


class DataParallel(torch.nn.Module):
    def __init__(self, model, device_ids=None, dim=0, set_dynamic_batching=True):
        super().__init__()
        _record("DataParallel", device_ids=device_ids, dim=dim, set_dynamic_batching=set_dynamic_batching,
                visible_cores=os.environ.get("NEURON_RT_VISIBLE_CORES"))
        self.module = model
        self.dim = dim
        self.n = len(device_ids) if device_ids else _visible_cores()

    def forward(self, *inputs):
        chunks = [t.chunk(self.n, self.dim) for t in inputs]
        outs = [self.module(*parts) for parts in zip(*chunks)]
        return torch.cat(outs, self.dim)
