"""Where cards, suites, reference tables and the compile cache live.

Cards, suites and reference tables sit at the top of the repository (models/, suites/,
results/reference/) and ship inside the wheel as the packages bench.data.models,
bench.data.suites and bench.data.reference (pyproject.toml maps one onto the other), so a
checkout, an editable install and a wheel installed anywhere find the same files.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

# The checkout root when running from one: models/, suites/ and results/ sit beside bench/.
ROOT = Path(__file__).resolve().parent.parent


def _shipped(package: str, checkout: Path) -> Path | None:
    """The directory of a bench.data package (wheel or editable install), else the checkout's."""
    try:
        tree = resources.files(package)
        # bench.data.* have no __init__.py (they are the repository's own folders), so
        # importlib.resources gives a MultiplexedPath: its entries are real paths.
        found = tree if isinstance(tree, Path) else next(
            (Path(str(child)).parent for child in tree.iterdir() if isinstance(child, Path)), None)
    except (ModuleNotFoundError, TypeError, FileNotFoundError, NotADirectoryError):
        found = None
    if found is not None and found.is_dir() and any(found.iterdir()):
        return found
    return checkout if checkout.is_dir() else None


def _dirs(env_var: str, default: Path | None) -> list[Path]:
    extra = [Path(p) for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    return [d for d in [*extra, default] if d is not None and d.is_dir()]


def model_dirs() -> list[Path]:
    """Model card folders: $TRNBENCH_MODELS (os.pathsep-separated) first, then the shipped cards."""
    return _dirs("TRNBENCH_MODELS", _shipped("bench.data.models", ROOT / "models"))


def suite_dirs() -> list[Path]:
    """Suite folders: $TRNBENCH_SUITES first, then the shipped suites."""
    return _dirs("TRNBENCH_SUITES", _shipped("bench.data.suites", ROOT / "suites"))


def reference_dir() -> Path:
    """Published-figure tables (neuron-published.csv, instance prices)."""
    return _shipped("bench.data.reference", ROOT / "results" / "reference") or ROOT / "results" / "reference"


def seeds_dir() -> Path | None:
    """Fixed-seed inputs and reference outputs per card (seeds/, shipped as bench.data.seeds)."""
    return _shipped("bench.data.seeds", ROOT / "seeds")


def cache_dir() -> Path:
    """Compiled-artifact cache: $TRNBENCH_CACHE or ~/.cache/trnbench."""
    env = os.environ.get("TRNBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trnbench"
