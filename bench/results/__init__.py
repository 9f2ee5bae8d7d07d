"""Results: the row's contract (schema), the run directories (store), the host's facts (env)."""
