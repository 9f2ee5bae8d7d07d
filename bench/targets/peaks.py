"""Dense peak FLOP/s of the devices a user may meet, per chip, for MFU (bench.targets.train).

Model FLOPs utilisation is the FLOP/s a step achieves over what the device could do at most
in the precision the matrix units run in: BF16 (fp16/tf32 alike) for bf16, amp-bf16 and the
Neuron compiler's auto-cast, FP32 for fp32. Dense figures only (no structured sparsity).

A rank of a data-parallel cell holds one NeuronCore (TorchNeuron's backend sets
NEURON_RT_VISIBLE_CORES to the local rank; the XLA flow maps one process to one core), so a
rank's share of a Neuron chip is the chip's peak over its logical cores: Trn1 and Inf2 have
2 NeuronCore-v2 a chip; Trn2 and Trn3 have 8 physical cores a chip, grouped in pairs at LNC=2
(the default: 4 logical cores) or single at LNC=1 (8) (logical-neuroncore-config.rst). A
CUDA rank holds one GPU. No peak is known for CPUs: MFU is then empty, never guessed.

Sources (aws-neuron/aws-neuron-sdk @ 81ce03ae, about-neuron/arch/neuron-hardware/):
- trainium.rst: "190 FP16/BF16/cFP8/TF32 TFLOPS, and 47.5 FP32 TFLOP" (2 NeuronCore-v2)
- inferentia2.rst: "190 FP16/BF16/cFP8/TF32 TFLOPS, and 47.5 FP32 TFLOPS" (2 NeuronCore-v2)
- trainium2.rst: "667 BF16/FP16/TF32 TFLOPS", "181 FP32 TFLOPS", "eight NeuronCore-V3 cores"
- trainium3.rst: "671 BF16/FP16/TF32 TFLOPS", "183 FP32 TFLOPS", "eight NeuronCore-v4 cores"
NVIDIA dense BF16 from pytorch/torchtitan's get_peak_flops (torchtitan/tools/utils.py @
02581674: A100 312, H100 SXM 989, H100 PCIe 756, H100 NVL 835, H200 989, B200 2250, L40S
362) and mosaicml/composer's speed_monitor.py (A10 125); FP32 (non-tensor-core) from the
same NVIDIA datasheets those cite: A100 19.5, H100 SXM 67, H100 PCIe 51, H200 67.
"""

from __future__ import annotations

from dataclasses import dataclass

NEURON_SOURCE = "aws-neuron-sdk about-neuron/arch/neuron-hardware/{}.rst"
NVIDIA_SOURCE = "NVIDIA datasheet, as in pytorch/torchtitan get_peak_flops"


@dataclass(frozen=True)
class Peak:
    """One chip's dense peak, TFLOP/s: (bf16, fp32), and its logical cores at each LNC."""

    bf16: float
    fp32: float | None
    source: str
    cores: dict[int, int] | None = None  # LNC -> logical cores a chip (Neuron); None: one device


NEURON = {
    "trn1": Peak(190, 47.5, NEURON_SOURCE.format("trainium"), {1: 2}),
    "inf2": Peak(190, 47.5, NEURON_SOURCE.format("inferentia2"), {1: 2}),
    "trn2": Peak(667, 181, NEURON_SOURCE.format("trainium2"), {1: 8, 2: 4}),
    "trn3": Peak(671, 183, NEURON_SOURCE.format("trainium3"), {1: 8, 2: 4}),
}
# matched in order against torch.cuda.get_device_name(), case-insensitive
NVIDIA = (
    ("h100 nvl", Peak(835, None, NVIDIA_SOURCE)),
    ("h100 pcie", Peak(756, 51, NVIDIA_SOURCE)),
    ("h100", Peak(989, 67, NVIDIA_SOURCE)),  # SXM, "and other variants" (torchtitan)
    ("h200", Peak(989, 67, NVIDIA_SOURCE)),
    ("b200", Peak(2250, None, NVIDIA_SOURCE)),
    ("a100", Peak(312, 19.5, NVIDIA_SOURCE)),
    ("l40s", Peak(362, None, NVIDIA_SOURCE)),
    ("a10", Peak(125, None, "NVIDIA A10 datasheet, as in mosaicml/composer speed_monitor.py")),
)
FAMILY = {"trn1": "trn1", "trn1n": "trn1", "inf2": "inf2", "trn2": "trn2", "trn2n": "trn2", "trn2u": "trn2",
          "trn3": "trn3", "trn3u": "trn3"}


def per_device(kind: str, device_name: str | None, precision: str, instance_family: str | None = None,
               lnc: int | None = None) -> tuple[float | None, str]:
    """(TFLOP/s of the device one rank holds, where it comes from); (None, why) when unknown."""
    wide = precision == "fp32"
    if kind == "neuron":
        family = FAMILY.get(instance_family or "")
        if family is None:
            return None, f"no peak known for instance family {instance_family!r}"
        chip = NEURON[family]
        lnc = lnc or max(chip.cores or {1: 0})
        cores = (chip.cores or {}).get(lnc) or (chip.cores or {}).get(1) or 1
        value = chip.fp32 if wide else chip.bf16
        return value / cores, f"{chip.source}: {value:g} TFLOP/s a chip over {cores} logical cores (LNC={lnc})"
    if kind == "cuda":
        name = (device_name or "").lower()
        for needle, chip in NVIDIA:
            if needle in name:
                value = chip.fp32 if wide else chip.bf16
                if value is None:
                    return None, f"no FP32 peak listed for {device_name}"
                return value, chip.source
        return None, f"no peak known for {device_name!r}"
    return None, "no peak known for this device (CPUs have none in the table)"
