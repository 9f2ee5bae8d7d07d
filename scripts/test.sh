#!/usr/bin/env bash
# Set up (if needed), lint and run the tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/setup.sh "${SETUP_ARGS:-}" | tail -n 1)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$PY" -m ruff check bench tests scripts
exec "$PY" -m pytest -q "$@"
