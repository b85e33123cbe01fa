#!/usr/bin/env bash
# Create .venv (if missing) and install collapselab with everything its tests use.
# torch is installed first and pinned: a looser requirement with no torch present pulls a
# multi-GB CUDA build; 2.13.0 is the release whose CPU build this workplace keeps on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[all]"
