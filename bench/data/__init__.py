"""Package data: the model cards, suites and reference tables shipped inside the wheel.

In the repository they live at the top level (models/, suites/, results/reference/);
pyproject.toml maps them to bench.data.models, bench.data.suites and bench.data.reference,
so a wheel or a non-editable install carries them. Read them through bench.paths.
"""
