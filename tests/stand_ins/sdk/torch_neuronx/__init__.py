"""TEST STAND-IN for `torch_neuronx`. It is NOT the Neuron SDK and compiles nothing.

It exists only so that CI, which has no Neuron device or SDK, can check that trnbench
calls the SDK the way its documentation says (contract tests, tests/e2e/test_neuron_contract.py):

- `trace` has the documented signature
  `trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None,
  compiler_args=None, partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False)`
  (api-torch-neuronx-trace.rst in aws-neuron/aws-neuron-sdk) plus `**kwargs`: like the real
  one (torch_neuronx/xla_impl/trace.py, as seen in a public copy and a `help()` dump), an
  unknown keyword is a `UserWarning` "Unexpected keyword arguments: [...]" and is ignored;
  keyword arguments passed positionally are refused (deprecated since 2.15).
- `cpu_backend=True` needs `--target` ("This keyword needs to be used with the compiler_args
  option to set the --target flag") and, on a host with no device, a platform: the
  NEURON_PLATFORM_TARGET_OVERRIDE present when the module was imported, else the error
  quoted in huggingface/optimum-neuron#961 ("If you want to compile on CPU, please supply
  compiler argument target ..."). Whether the real one needs the override for `trace` itself
  is not public (its source is closed); optimum-neuron sets it before any Neuron import.
- It returns `torch.jit.trace` of the module on CPU (a ScriptModule that `torch.jit.save` /
  `torch.jit.load` handle) and leaves in `compiler_workdir` what torch_neuronx's own
  `_trace`/`hlo_compile` left there in the public copy: `model/graph.hlo`,
  `model/metadata.json`, `model/weights/<name>.npy` (a copy of every weight), `graph.neff`,
  `command.txt`; neuronx-cc's log goes to `--logfile` (default `log-neuron-cc.txt` in the
  working directory, compiler/neuronx-cc/api-reference-guide/index.rst: the public copy's
  `hlo_compile` runs `subprocess.run(command)` with no `cwd`, so that is the caller's working
  directory, not compiler_workdir). trnbench always passes `--logfile`; a test that calls
  this stand-in without one runs it in a temporary working directory.
- `--auto-cast` / `--auto-cast-type` change the numbers as neuronx-cc says they do
  (compiler/neuronx-cc/api-reference-guide/index.rst: `matmult` casts "FP32 operations that
  use the Neuron matrix-multiplication engine", `all` every FP32 operation, to bf16 (the
  default type), fp16, tf32 or fp8_e4m3; the right-most option wins; `none` is the default
  from Neuron 2.27). Here: the inputs and weights of every Linear/Conv (matmult), or the
  inputs and outputs of every leaf module as well (all), are rounded to that type and the
  arithmetic stays fp32, like the engine's fp32 accumulation. So an auto-cast cell's outputs
  really differ from eager fp32, and the harness must judge them at the cast precision.
- `DataParallel(model, device_ids=None, dim=0, set_dynamic_batching=True)` splits the batch
  over the process's visible cores and runs the chunks one after another on CPU.

Every call, and the import itself (with the worker's NEURON_* environment and command line),
is appended as one JSON line to $TRNBENCH_STANDIN_LOG when that is set.
"""

from __future__ import annotations

import functools
import glob
import inspect
import json
import os
import sys
import time
import warnings

import torch

# The platform is settled when the SDK is imported (optimum-neuron PR #988: "Once the import
# has been done we're stuck with whatever target was guessed by the runtime").
_HAS_DEVICE = bool(glob.glob(os.environ.get("TRNBENCH_DEV_GLOB", "/dev/neuron*")))
_PLATFORM = os.environ.get("NEURON_PLATFORM_TARGET_OVERRIDE") or ("device" if _HAS_DEVICE else None)

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
                                            "NEURON_PROCESS_TAG", "TRNBENCH_COMPILE_ONLY",
                                            "NEURON_PLATFORM_TARGET_OVERRIDE", "NEURON_RT_INSPECT_ENABLE",
                                            "NEURON_RT_INSPECT_OUTPUT_DIR", "NEURON_RT_INSPECT_DEVICE_PROFILE",
                                            "NEURON_RT_INSPECT_SYSTEM_PROFILE")},
        argv=list(getattr(sys, "orig_argv", sys.argv)))


def _inspect_capture() -> None:
    """The runtime's capture (NEURON_RT_INSPECT_*, tools/neuron-explorer/environment-variables.rst),
    written when the process ends, in the documented layout (how-to-profile-workload.rst,
    "Expected output"): `<OUTPUT_DIR>/<instance-id>_pid_<pid>/<timestamp>/` with the system
    profile (`ntrace.pb`, `trace_info.pb`), the NEFF, and the device trace: one
    `profile_nc_0_session_0.ntff` in `session` mode, `<hash>_instid_0_vnc_0.ntff` beside
    `neff_<hash>.neff` in model mode (`1`). The files' bytes are placeholders, marked as such.
    The output directory defaults to `./output`; the device trace needs DEVICE_PROFILE set."""
    out = os.environ.get("NEURON_RT_INSPECT_OUTPUT_DIR") or "./output"
    folder = os.path.join(out, f"i-0standin_pid_{os.getpid()}", time.strftime("%Y%m%d%H%M%S"))
    os.makedirs(folder, exist_ok=True)
    for name in ("ntrace.pb", "trace_info.pb"):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(b"STAND-IN system profile (not a Neuron runtime capture)\n")
    mode = os.environ.get("NEURON_RT_INSPECT_DEVICE_PROFILE", "0")
    if mode in ("1", "model"):
        names = ["neff_1438288577.neff", "1438288577_instid_0_vnc_0.ntff"]
    elif mode == "session":
        names = ["neff_1438288577_vnc_0.neff", "profile_nc_0_session_0.ntff"]
    else:
        names = []
    for name in names:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(b"STAND-IN device trace (not a Neuron runtime capture)\n")
    _record("inspect_capture", folder=folder, mode=mode)


if os.environ.get("NEURON_RT_INSPECT_ENABLE") == "1":
    import multiprocessing.util

    # a worker process ends through multiprocessing's exit function (not always atexit)
    multiprocessing.util.Finalize(None, _inspect_capture, exitpriority=100)


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
          compiler_args=None, partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False, **kwargs):
    if _:
        raise TypeError("stand-in torch_neuronx.trace: pass keyword arguments by name "
                        "(positional kwargs are deprecated since torch-neuronx for Neuron 2.15)")
    if kwargs:
        warnings.warn(f"Unexpected keyword arguments: {list(kwargs.keys())}", category=UserWarning, stacklevel=2)
    args = compiler_args.split() if isinstance(compiler_args, str) else list(compiler_args or [])
    has_target = any(a == "--target" or a.startswith("--target=") for a in args)
    if cpu_backend and not has_target:
        raise ValueError("cpu_backend=True needs the --target flag in compiler_args")
    if cpu_backend and _PLATFORM is None:
        raise RuntimeError('If you want to compile on CPU, please supply compiler argument target, with one of '
                           'options trn1, inf2, trn1n, or trn2. Ex: "--target trn1"')
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    traced = torch.jit.trace(_auto_cast(func, args), tuple(example_inputs), check_trace=False)
    workdir = compiler_workdir or os.getcwd()
    _write_workdir(workdir, func, args, cpu_backend)
    return traced


def _flag(args: list, name: str, default: str) -> str:
    """The right-most value of `--name=V` or `--name V` (index.rst: the right-most option wins)."""
    value = default
    for i, a in enumerate(args):
        if a.startswith(f"--{name}="):
            value = a.split("=", 1)[1]
        elif a == f"--{name}" and i + 1 < len(args):
            value = args[i + 1]
    return value


def _rounder(cast_type: str):
    """x -> x rounded to `cast_type` and back to fp32."""
    if cast_type == "tf32":  # 10 explicit mantissa bits of fp32's 23 (round to nearest even)
        def to_tf32(x):
            bits = x.contiguous().view(torch.int32)
            lsb = (bits >> 13) & 1
            return ((bits + 0xFFF + lsb) & ~0x1FFF).view(torch.float32)
        return to_tf32
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp8_e4m3": torch.float8_e4m3fn}[cast_type]
    return lambda x: x.to(dtype).to(torch.float32)


def _auto_cast(func, args: list):
    """A copy of `func` whose arithmetic sees what --auto-cast would give it (docstring above)."""
    import copy

    mode = _flag(args, "auto-cast", "none")
    if mode == "none" or not isinstance(func, torch.nn.Module):
        return func
    rnd = _rounder(_flag(args, "auto-cast-type", "bf16"))

    def cast(v):
        return rnd(v) if isinstance(v, torch.Tensor) and v.dtype == torch.float32 else v

    model = copy.deepcopy(func)
    matmul = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    with torch.no_grad():
        for m in model.modules():
            leaf = not any(True for _ in m.children())
            if isinstance(m, matmul) or (mode == "all" and leaf):
                for p in m.parameters(recurse=False):
                    p.copy_(cast(p))
                m.register_forward_pre_hook(lambda _m, inputs: tuple(cast(v) for v in inputs))
            if mode == "all" and leaf:
                m.register_forward_hook(lambda _m, _i, out: cast(out) if isinstance(out, torch.Tensor) else out)
    return model


def _write_workdir(workdir: str, func, args: list, cpu_backend: bool) -> None:
    """What torch_neuronx leaves in compiler_workdir: the HLO, a copy of every weight, the NEFF."""
    import numpy as np

    model_dir = os.path.join(workdir, "model")
    os.makedirs(os.path.join(model_dir, "weights"), exist_ok=True)
    names = []
    for i, (name, p) in enumerate(getattr(func, "state_dict", dict)().items()):
        if i >= 8:  # a few real copies are enough to show they are removed
            break
        np.save(os.path.join(model_dir, "weights", f"{name}.npy"), p.detach().float().cpu().numpy())
        names.append(f"weights/{name}.npy")
    with open(os.path.join(model_dir, "graph.hlo"), "wb") as f:
        f.write(b"stand-in HLO" * 1024)
    with open(os.path.join(model_dir, "metadata.json"), "w", encoding="utf-8") as f:
        json.dump({"model_files": "graph.hlo", "version": "1.0", "weights": names}, f)
    with open(os.path.join(workdir, "graph.neff"), "wb") as f:
        f.write(b"stand-in: not a NEFF")
    with open(os.path.join(workdir, "command.txt"), "w", encoding="utf-8") as f:
        f.write(" ".join(["neuronx-cc", "compile", "model", "--framework", "XLA", *map(str, args)]))
    logfile = next((a.split("=", 1)[1] for a in args if a.startswith("--logfile=")), None)
    if logfile is None and "--logfile" in args:
        logfile = args[args.index("--logfile") + 1]
    with open(logfile or "log-neuron-cc.txt", "w", encoding="utf-8") as f:
        f.write("STAND-IN torch_neuronx (tests/stand_ins): neuronx-cc did not run.\n"
                f"compiler_args: {args}\ncpu_backend: {cpu_backend}\n")


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
