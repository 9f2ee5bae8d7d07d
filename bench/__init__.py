"""trnbench: benchmark models on Neuron (trn1/trn2/inf2), CUDA and CPU.

The public API fits on one screen:

    from bench import Cell, Measure, Plan, run_plan, load
    plan = Plan.from_suite("smoke")
    run_dir = run_plan(plan, out="results")
    df = load(run_dir)

A user's own model: ``bench.UserModel(factory)`` where ``factory()`` returns
``(nn.Module, example_inputs)``; see docs/extending.md.
"""

from bench.errors import UsageError
from bench.plan.cell import Cell, Measure, UserModel
from bench.plan.grid import Plan
from bench.version import __version__

__all__ = ["Cell", "Measure", "Plan", "UsageError", "UserModel", "load", "run_plan", "__version__"]


def run_plan(*args, **kwargs):
    """Run a Plan and return its results directory (see bench.execute.sweep.run_plan)."""
    from bench.execute.sweep import run_plan as _run

    return _run(*args, **kwargs)


def load(*args, **kwargs):
    """Load one or more results directories into a pandas DataFrame (bench.results.store.load)."""
    from bench.results.store import load as _load

    return _load(*args, **kwargs)
