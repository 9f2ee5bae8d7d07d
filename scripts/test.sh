#!/usr/bin/env bash
# Set up (if needed), lint and run the tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/setup.sh "${SETUP_ARGS:-}" | tail -n 1)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NO_MKDOCS_2_WARNING=1
"$PY" -m ruff check bench tests scripts benchmarks
# the manual builds with no warning (mkdocs.yml strict), into a temporary folder
site=$(mktemp -d) && trap 'rm -rf "$site"' EXIT
"$PY" -m mkdocs build --strict --quiet -d "$site" || { echo "test: the docs do not build (mkdocs build --strict)" >&2; exit 1; }
"$("$PY" -c 'import sys, os; print(os.path.join(os.path.dirname(sys.executable), "lint-imports"))')" --no-cache \
    || { echo "test: the layering contract is broken (pyproject.toml [tool.importlinter])" >&2; exit 1; }
# coverage per module, with the lines and branches no test reaches (pyproject.toml [tool.coverage])
"$PY" -m pytest -q --cov --cov-report=term --durations=15 "$@"
