"""neuronx-cc flags: the documented ones are validated, all are passed through verbatim.

What each rule follows (aws-neuron/aws-neuron-sdk @ 81ce03ae, the docs' source):
- `--target inf2|trn1|trn1n|trn2` is the CLI reference's list
  (compiler/neuronx-cc/api-reference-guide/index.rst); `trn3` is used by the docs' own NKI
  samples (nki/deep-dives/src/mxfp-matmul/mx_toplevel.py: "--target trn3") and by
  NEURON_PLATFORM_TARGET_OVERRIDE ("trn3|gen4", nki/api/nki/__init__.py); `trn2n` is the
  trn2n.48xlarge family (the neuron-ls and neuron-monitor samples) and is accepted as a
  spelling of the trn2 chip (the CLI reference does not list it: neuronx-cc may refuse it).
- The logical-NeuronCore flag is spelled `--logical-nc-config`, `-lnc` (CLI reference) and
  `--lnc` (compiler/error-codes/EARG001.rst: `compiler_args=['--lnc', '2']`; NxD Inference
  emits `--lnc={n}`, models/model_wrapper.py). Values 1 or 2; "On trn1, only lnc=1 is
  supported" (EARG001), and LNC=2 exists on Trn2 and Trn3 only
  (about-neuron/arch/neuron-features/logical-neuroncore-config.rst). The runtime's
  NEURON_LOGICAL_NC_CONFIG must equal the compiler's LNC (same page).
- `--auto-cast none|matmult|all` defaults to `none` since Neuron 2.27 (compiler 2.22.12471.0;
  release-notes/components/compiler.rst: "The --auto-cast flag now defaults to none
  (previously matmul)"); before, the default was `matmult`.
- `--logfile <filename>` (default "log-neuron-cc.txt" in the compiler's working directory).
- A NEFF for `--target trn1` runs on inf2: both are NeuronCore-v2 ("Currently this only
  supports NeuronCore-v2 type instances (e.g. trn1, inf2)", api-torch-neuronx-trace.rst),
  and optimum-neuron and neuronx-distributed compile inf2 as the trn1 platform
  (optimum/neuron/utils/instance.py INSTANCE_VALUE_MAP; neuronx_distributed/utils/utils.py).
"""

from __future__ import annotations

import re

from bench.errors import UsageError

TARGETS = ("inf2", "trn1", "trn1n", "trn2", "trn2n", "trn3")
# Which instance families each neuronx-cc --target runs on.
TARGET_FAMILIES = {
    "inf2": ("inf2",),
    "trn1": ("trn1", "trn1n", "inf2"),
    "trn1n": ("trn1n",),
    "trn2": ("trn2", "trn2n", "trn2u"),
    "trn2n": ("trn2", "trn2n", "trn2u"),
    "trn3": ("trn3", "trn3u"),
}
LNC2_TARGETS = ("trn2", "trn2n", "trn3")  # LNC=2 exists on Trainium2 and Trainium3 only
# NEURON_PLATFORM_TARGET_OVERRIDE for a --target, as optimum-neuron writes it before any
# Neuron import on a host without devices (optimum/commands/export/neuronx.py
# setup_target_instance, via optimum/neuron/utils/instance.py INSTANCE_VALUE_MAP:
# inf2/trn1/trn1n -> "trn1", trn2 -> "trn2"); trn3 as neuronx-distributed maps it.
PLATFORM_OVERRIDE = {"inf2": "trn1", "trn1": "trn1", "trn1n": "trn1", "trn2": "trn2", "trn2n": "trn2",
                     "trn3": "trn3"}
# neuronx-cc's default --auto-cast: `none` from compiler 2.22 (Neuron 2.27), `matmult` before.
AUTO_CAST_NONE_SINCE = (2, 22)
LOGFILE = "log-neuron-cc.txt"

# canonical flag -> (spellings, allowed values or None for "any value")
_FLAGS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "target": (("--target",), TARGETS),
    "model-type": (("--model-type",), ("generic", "transformer", "unet-inference")),
    "auto-cast": (("--auto-cast",), ("none", "matmult", "all")),
    "auto-cast-type": (("--auto-cast-type",), ("bf16", "fp16", "tf32", "fp8_e4m3")),
    "optlevel": (("--optlevel", "-O"), ("1", "2", "3")),
    "logical-nc-config": (("--logical-nc-config", "-lnc", "--lnc"), ("1", "2")),
    "logfile": (("--logfile",), None),
}


def parse_compiler_args(args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The documented neuronx-cc flags in `args` -> {canonical name: value}; validates their values.

    Accepts `--flag=value`, `--flag value`, `-O2`, `-O 2`, `-lnc=2`, `-lnc 2`, `--lnc=2`,
    `--lnc 2`. Later flags win, as in neuronx-cc. Flags it does not know are passed through
    untouched.
    """
    out: dict[str, str] = {}
    items = list(args)
    i = 0
    while i < len(items):
        token = items[i]
        matched = False
        for canon, (spellings, allowed) in _FLAGS.items():
            for sp in spellings:
                value = None
                if token == sp:
                    if i + 1 >= len(items):
                        raise UsageError(f"compiler flag {sp} needs a value")
                    value = items[i + 1]
                    i += 1
                elif token.startswith(sp + "="):
                    value = token[len(sp) + 1:]
                elif sp == "-O" and re.fullmatch(r"-O\d", token):
                    value = token[2:]
                if value is None:
                    continue
                if allowed and value not in allowed:
                    hint = " (neuronx-cc spells it 'matmult')" if canon == "auto-cast" and value == "matmul" else ""
                    raise UsageError(f"compiler flag {sp}: {value!r} is not one of {', '.join(allowed)}{hint}")
                out[canon] = value
                matched = True
                break
            if matched:
                break
        i += 1
    lnc, target = out.get("logical-nc-config"), out.get("target")
    if lnc == "2" and target is not None and target not in LNC2_TARGETS:
        raise UsageError(f"--lnc 2 (logical NeuronCores of two physical cores) exists on trn2 and trn3 only; "
                         f"--target={target} takes --lnc 1 (neuronx-cc error NCC_EARG001)")
    return out


def lnc(flags: dict[str, str]) -> int | None:
    """The logical NeuronCore config the flags ask for, or None (the host's)."""
    return int(flags["logical-nc-config"]) if "logical-nc-config" in flags else None


def compiler_version_tuple(version: str) -> tuple[int, ...] | None:
    """'2.22.12471.0+abc' -> (2, 22, 12471, 0); None for '' or something else."""
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", version or "")
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def default_auto_cast(compiler_version: str) -> str:
    """neuronx-cc's --auto-cast when the flag is absent: by the installed compiler's version.

    With no compiler here (planning on a host without the SDK) the current default, `none`.
    """
    v = compiler_version_tuple(compiler_version)
    if v is None:
        return "none"
    return "none" if v[:2] >= AUTO_CAST_NONE_SINCE else "matmult"


def effective_auto_cast(flags: dict[str, str], compiler_version: str) -> str:
    """What neuronx-cc will do: the flag's value, else the installed compiler's default."""
    return flags.get("auto-cast") or default_auto_cast(compiler_version)
