"""Imported once by the forkserver so that each worker forks with torch ready.

Never imports a Neuron SDK module: a process that has initialised the Neuron runtime
must not fork (the child gets NRT_STATE_CHILD).

Importing transformers' first modeling module pulls in most of what every model needs
(measured on this project's VM: 3.8 s for bert's, then 0.05 s for vit's or gpt2's); done
here, each forked worker builds its model in a fraction of a second instead.
"""

import atexit
import contextlib
import os

import torch  # noqa: F401
import transformers  # noqa: F401

import bench.execute.worker  # noqa: F401
import bench.models  # noqa: F401
import bench.stats  # noqa: F401
import bench.targets.loops  # noqa: F401

with contextlib.suppress(ImportError):  # a transformers without bert still works, only slower
    import transformers.models.bert.modeling_bert  # noqa: F401

# The forkserver ends when the run does (its parent closes the pipe it watches), then tears
# its interpreter down with torch and transformers loaded: 0.8 s measured here, after the run
# had finished, with the run's stdout still open in it, so a caller reading trnbench's output
# (a CI step, `$(...)`, a benchmark) waited for it. It has nothing to flush or save: leave at
# once. Registered last, so run first; forked workers always leave through os._exit already.
atexit.register(os._exit, 0)
