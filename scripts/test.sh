#!/usr/bin/env bash
# Set up, start PostgreSQL for the store tests (when it is installed), run every test tier.
# Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests drive Debian's Chromium (a browser download at test time fails here).
if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q chromium chromium-driver >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
  else
    echo "test.sh: the e2e browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2
  fi
fi
. .venv/bin/activate
export COLLAPSELAB_TEST_DATA="${COLLAPSELAB_TEST_DATA:-$(cd .. && pwd)/shared/data}"
if command -v pg_ctlcluster >/dev/null 2>&1; then
  eval "$(bash .ci/postgres.sh)"
else
  echo "test.sh: PostgreSQL is not installed; the PostgreSQL store tests will fail under CI=true and skip otherwise" >&2
fi
# Test files go to a fresh folder that is removed afterwards, so repeated runs on one machine
# do not fill its disk (the catalogue tests de-quantize two real models there, about 1.6 GiB).
tmp=$(mktemp -d "${TMPDIR:-/tmp}/collapselab-tests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
free_mib=$(( $(df -Pk "$tmp" | awk 'NR == 2 {print $4}') / 1024 ))
if [ "$free_mib" -lt 4096 ]; then
  echo "test.sh: only $free_mib MiB free under $tmp; the suite writes about 2 GiB there and 1.6 GiB of de-quantized models under ~/.cache/collapselab" >&2
fi
python -m pytest -q -p no:cacheprovider --basetemp "$tmp/pytest" "$@"
