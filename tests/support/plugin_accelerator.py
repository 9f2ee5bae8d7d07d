"""A target outside bench/ that is a new accelerator kind: what a user writes to add one.

It runs the model on the CPU (this project's machines have no such device), but declares its
own kind and its own Ray resource, so a sweep across nodes places each model copy on one unit
of `fake_accel` (`ray start --resources='{"fake_accel": 4}'`), and the Ray task hands the ids
it was assigned to the target (`on_ray_ids`), which makes them the worker's visible devices.
Named on the command line as `-t tests.support.plugin_accelerator:FakeAccelerator`.
"""

from __future__ import annotations

from bench.targets.cpu import CpuTarget

VISIBLE = "FAKE_ACCEL_VISIBLE_DEVICES"


class FakeAccelerator(CpuTarget):
    """A new accelerator kind; its requests are inference calls, as on any model target."""

    verbs = ("infer",)
    kind = "fake-accel"
    ray_resource = "fake_accel"  # one unit per model copy
    compilers = ("eager",)
    dtypes = ("fp32",)

    def __init__(self, devices: list[str] | None = None):
        self.devices = devices

    def describe(self):
        import os

        return {"accelerator": self.kind, "device_name": f"fake accelerator {os.environ.get(VISIBLE, 'any')}"}

    def worker_env(self, cell, model_index):
        env = dict(super().worker_env(cell, model_index))
        if self.devices:
            env[VISIBLE] = self.devices[model_index % len(self.devices)]
        return env

    def sync(self) -> None:
        """Its own sync (a device would wait here): the timed loop must call it."""

    def on_ray_ids(self, ids):
        return FakeAccelerator(ids)
