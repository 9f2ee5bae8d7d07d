"""Statistics over raw samples and stored rows (no torch): stats, accuracy, samples,
estimate, compare (run vs run), reference (vs published figures), pivot."""
