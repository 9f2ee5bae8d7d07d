#!/usr/bin/env bash
# Set up trnbench with no network beyond the package registry.
#
#   bash scripts/setup.sh            # creates ./.venv (or reuses it) and installs into it
#   bash scripts/setup.sh --here     # installs into the active Python environment
#                                    # (e.g. a Neuron DLAMI venv: its torch is left alone)
#
# torch: if the environment already has torch (a Neuron DLAMI pins its own, with
# torch-neuronx), it is never replaced. If it has none, the CPU wheel torch==2.13.0 is
# installed first, so that no CUDA build of several GB is pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--here" ]; then
  PY=${PYTHON:-python3}
else
  if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
  fi
  PY=.venv/bin/python
fi

"$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: no torch here: installing the CPU wheel torch==2.13.0" >&2
  "$PY" -m pip install -q "torch==2.13.0"
else
  echo "setup: keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')" >&2
fi
"$PY" -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored: it is neither" || true
"$PY" -c "import bench, torch, transformers" || { echo "setup: install failed" >&2; exit 1; }
echo "$PY"
