"""TEST STAND-IN for `torch_xla.debug.metrics` (see torch_xla/__init__.py here).

`metric_data(name)`: "The metric data, which is a tuple of (TOTAL_SAMPLES, ACCUMULATOR,
SAMPLES)", None for a metric with no sample yet (pytorch/xla torch_xla/debug/metrics.py; its
tests assert `met.metric_data('CompileTime')` is None before any compile). Only CompileTime
is kept here: one sample per graph torch_xla.sync() counted as new.
"""

from __future__ import annotations

import torch_xla


def metric_data(name: str):
    if name != "CompileTime" or not torch_xla._state["compiles"]:
        return None
    n = torch_xla._state["compiles"]
    return (n, 0.0, [])
