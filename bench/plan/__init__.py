"""What to run.

- `bench.plan.cell`: Cell, Measure, UserModel (plain data; every layer may import it);
- `bench.plan.suite`: TOML suites -> grid axes (pure parsing);
- `bench.plan.grid`: Plan, Plan.from_grid / from_suite, which resolve cells against the
  model cards, targets and scenarios.
"""
