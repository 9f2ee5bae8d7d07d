"""Statistics over raw samples (no torch)."""
