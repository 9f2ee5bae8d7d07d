"""Running a plan: worker processes (pool, worker), one cell to one row (cell), the sweep
(sweep: local, or ray), and compile-only (precompile)."""
