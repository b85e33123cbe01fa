#!/usr/bin/env bash
# Set up, then run the quickstart experiment on real human text.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export COLLAPSELAB_DATA="${COLLAPSELAB_DATA:-$(cd .. && pwd)/shared/data}"
exec collapselab quickstart "$@"
