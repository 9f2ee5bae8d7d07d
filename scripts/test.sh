#!/usr/bin/env bash
# Set up (if needed), lint and run the tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/setup.sh "${SETUP_ARGS:-}" | tail -n 1)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$PY" -m ruff check bench tests scripts
"$("$PY" -c 'import sys, os; print(os.path.join(os.path.dirname(sys.executable), "lint-imports"))')" --no-cache \
    || { echo "test: the layering contract is broken (pyproject.toml [tool.importlinter])" >&2; exit 1; }
# coverage per module, with the lines and branches no test reaches (pyproject.toml [tool.coverage])
exec "$PY" -m pytest -q --cov --cov-report=term "$@"
