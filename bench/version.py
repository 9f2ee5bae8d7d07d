"""The harness version, recorded in every row (harness_version)."""

__version__ = "0.1.0"
