"""Running a plan: worker processes, the sweep, the Ray executor, compile-only."""
