"""Shared test setup: offline, hardware markers, fast measurement settings."""

from __future__ import annotations

import glob
import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# hypothesis keeps its example database and a unicode cache in .hypothesis/ of the working
# directory: the tests keep none in the checkout
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), f"trnbench-hypothesis-{os.getuid()}"))
try:
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("trnbench", database=None)
    _hypothesis_settings.load_profile("trnbench")
except ImportError:  # the fuzz tests skip themselves without it
    pass


def _has_neuron() -> bool:
    return bool(glob.glob("/dev/neuron*"))


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    """Skips what this host cannot run. A `timing` test runs with coverage paused in this process
    too (pytest-cov's `no_cover`): endpoint clients are forked from it, and a forked child keeps
    its parent's tracer."""
    skip_neuron = pytest.mark.skip(reason="needs the Neuron SDK and /dev/neuron* devices")
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    neuron, cuda = None, None
    for item in items:
        if item.get_closest_marker("timing"):
            item.add_marker(pytest.mark.no_cover)
        if "neuron" in item.keywords:
            neuron = _has_neuron() if neuron is None else neuron
            if not neuron:
                item.add_marker(skip_neuron)
        if "cuda" in item.keywords:
            cuda = _has_cuda() if cuda is None else cuda
            if not cuda:
                item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session compiles into its own artifact cache."""
    monkeypatch.setenv("TRNBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _untraced_processes_for_timing(request, monkeypatch):
    """Tests marked `timing` hold a latency to ~1 ms: the processes they start run without
    coverage's tracer (CI measures coverage; pyproject.toml [tool.coverage.run]), which adds
    ~3 ms to a streamed request's TTFT in the client worker."""
    if request.node.get_closest_marker("timing"):
        monkeypatch.delenv("COVERAGE_PROCESS_CONFIG", raising=False)
        monkeypatch.delenv("COVERAGE_PROCESS_START", raising=False)


@pytest.fixture
def quick():
    """Measurement settings short enough for unit tests."""
    from bench import Measure

    return Measure(rounds=1, warmup_s=0.05, min_duration_s=0.2, max_duration_s=0.4, min_samples=20, target_ci=0.05,
                   trim_s=0.05)


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake Neuron host (tests/support/neuron.py): stand-in SDK, tools and devices."""
    from bench.targets.neuron import inventory
    from tests.support.neuron import Host

    h = Host(tmp_path, monkeypatch)
    yield h
    inventory.clear_cache()
