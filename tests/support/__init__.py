"""Test helpers, imported as tests.support.<module> (and by name in worker processes:
plug-ins such as "tests.support.plugins:PerturbedCpu"; the repository root is on their path)."""
