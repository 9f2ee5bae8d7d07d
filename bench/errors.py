"""Errors the CLI turns into one line and exit status 2 (a user's mistake, not a bug)."""


class UsageError(Exception):
    """Bad input: unknown name, bad number, malformed file. Printed as one line, exit 2."""
