#!/usr/bin/env bash
# Set up (if needed) and run the main job: the CPU smoke suite, printing its table and
# writing a results directory under results/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/setup.sh "${SETUP_ARGS:-}" | tail -n 1)
export HF_HUB_OFFLINE=1
exec "$PY" -m bench.cli run --suite smoke --out "${1:-results}"
