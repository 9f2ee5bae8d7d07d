"""neuronx-cc flags: the documented ones are validated, all are passed through verbatim.

neuronx-cc flags (--target inf2|trn1|trn1n|trn2, --model-type, --auto-cast none|matmult|all,
--auto-cast-type bf16|fp16|tf32|fp8_e4m3, --optlevel/-O 1|2|3, --logical-nc-config/-lnc 1|2
on trn2; default --auto-cast is `none` since Neuron 2.27):
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/compiler/neuronx-cc/api-reference-guide/neuron-compiler-cli-reference-guide.html
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/release-notes/2.27.0/compiler.html
Logical NeuronCore config (the runtime's NEURON_LOGICAL_NC_CONFIG must equal the compiler's -lnc):
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/about-neuron/arch/neuron-features/logical-neuroncore-config.html
"""

from __future__ import annotations

import re

from bench.errors import UsageError

# Which instance families each neuronx-cc --target runs on.
TARGET_FAMILIES = {"inf2": ("inf2",), "trn1": ("trn1", "trn1n"), "trn1n": ("trn1n",), "trn2": ("trn2", "trn2u")}


# -- compiler flags -------------------------------------------------------------------------

# canonical flag -> (spellings, allowed values or None for "an integer")
_FLAGS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "target": (("--target",), ("inf2", "trn1", "trn1n", "trn2")),
    "model-type": (("--model-type",), ("generic", "transformer", "unet-inference")),
    "auto-cast": (("--auto-cast",), ("none", "matmult", "all")),
    "auto-cast-type": (("--auto-cast-type",), ("bf16", "fp16", "tf32", "fp8_e4m3")),
    "optlevel": (("--optlevel", "-O"), ("1", "2", "3")),
    "logical-nc-config": (("--logical-nc-config", "-lnc"), ("1", "2")),
}


def parse_compiler_args(args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The documented neuronx-cc flags in `args` -> {canonical name: value}; validates their values.

    Accepts `--flag=value`, `--flag value`, `-O2`, `-O 2`, `-lnc=2`, `-lnc 2`. Later flags win,
    as in neuronx-cc. Flags it does not know are passed through untouched.
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
    if "logical-nc-config" in out and out.get("target", "trn2") != "trn2":
        raise UsageError(f"--logical-nc-config applies to --target=trn2 only (got --target={out['target']})")
    return out
