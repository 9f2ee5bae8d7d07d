"""A training target whose loss is wrong: what the numerics check must catch.

It trains on the CPU like the cpu target, but its compiled step returns the loss x 1.5, as a
broken kernel or a miscompiled graph would; step 0's loss then leaves eager fp32's.
Named on the command line as `-t tests.support.plugin_training:WrongLoss`.
"""

from __future__ import annotations

from bench.targets.cpu import CpuTarget


class WrongLoss(CpuTarget):
    verbs = ("train",)
    kind = "wrong-loss"
    compilers = ("eager",)
    train_compilers = ("eager",)

    def train_compile(self, model, cell):
        def call(**batch):
            out = model(**batch)
            out.loss = out.loss * 1.5
            return out

        return call
