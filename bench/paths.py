"""Where cards, suites, reference tables and the compile cache live."""

from __future__ import annotations

import os
from pathlib import Path

# The checkout (or editable install) root: models/, suites/ and results/ sit beside bench/.
ROOT = Path(__file__).resolve().parent.parent


def _dirs(env_var: str, default: Path) -> list[Path]:
    extra = [Path(p) for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    return [d for d in [*extra, default] if d.is_dir()]


def model_dirs() -> list[Path]:
    """Model card folders: $NEURON_BENCH_MODELS (os.pathsep-separated) first, then models/."""
    return _dirs("NEURON_BENCH_MODELS", ROOT / "models")


def suite_dirs() -> list[Path]:
    """Suite folders: $NEURON_BENCH_SUITES first, then suites/."""
    return _dirs("NEURON_BENCH_SUITES", ROOT / "suites")


def reference_dir() -> Path:
    return ROOT / "results" / "reference"


def cache_dir() -> Path:
    """Compiled-artifact cache: $NEURON_BENCH_CACHE or ~/.cache/neuron-bench."""
    env = os.environ.get("NEURON_BENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "neuron-bench"
