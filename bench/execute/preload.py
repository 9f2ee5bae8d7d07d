"""Imported once by the forkserver so that each worker forks with torch ready.

Never imports a Neuron SDK module: a process that has initialised the Neuron runtime
must not fork (the child gets NRT_STATE_CHILD).
"""

import scipy.stats  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401

import bench.analysis.stats  # noqa: F401
import bench.execute.worker  # noqa: F401
import bench.models  # noqa: F401
import bench.scenarios.closed_loop  # noqa: F401
