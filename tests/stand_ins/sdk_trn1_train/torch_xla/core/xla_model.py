"""TEST STAND-IN for `torch_xla.core.xla_model` (see torch_xla/__init__.py here).

- `optimizer_step(optimizer, barrier=False, optimizer_args={}, groups=None, pin_layout=True)`:
  "Run the provided optimizer step and issue the XLA device step computation": it reduces the
  gradients across replicas (`reduce_gradients`), then `optimizer.step(**optimizer_args)`, and
  calls mark_step only when `barrier` (pytorch/xla torch_xla/core/xla_model.py). Here one
  replica: nothing to reduce.
- `wait_device_ops(devices=[])`: "Waits for all the async operations on the given devices to
  complete." Here nothing is asynchronous.
"""

from __future__ import annotations

import torch_xla


def xla_device(n=None, devkind=None):
    return torch_xla.device()


def optimizer_step(optimizer, barrier=False, optimizer_args=None, groups=None, pin_layout=True):
    torch_xla.log("xm.optimizer_step", barrier=barrier)
    loss = optimizer.step(**(optimizer_args or {}))
    if barrier:
        torch_xla.sync()
    return loss


def wait_device_ops(devices=None) -> None:
    torch_xla.log("xm.wait_device_ops")


def mark_step(wait: bool = False) -> None:
    torch_xla.sync(wait)
