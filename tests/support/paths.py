"""Where the tests' files are: the repository, tests/, its data and the SDK stand-ins."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
DATA = TESTS / "data"
STAND_INS = TESTS / "stand_ins"
SUPPORT = TESTS / "support"
