#!/usr/bin/env bash
# Start the installed PostgreSQL 15 and create the test role and database, idempotently.
#
# Prints the line that points the store tests at it; `.ci/run` sources it:
#   eval "$(.ci/postgres.sh)"
# Everything else goes to stderr so the eval sees only the export line.
set -euo pipefail

ROLE="${COLLAPSELAB_PG_ROLE:-collapselab}"
PASSWORD="${COLLAPSELAB_PG_PASSWORD:-collapselab}"
DB="${COLLAPSELAB_PG_DB:-collapselab_test}"
PORT="${COLLAPSELAB_PG_PORT:-5432}"

# pg_ctlcluster exits non-zero when the cluster already runs; that is fine, a cluster
# that is down after this is not.
pg_ctlcluster 15 main start >&2 2>&1 || true
for _ in $(seq 1 30); do
  pg_isready -q -h localhost -p "$PORT" && break
  sleep 1
done
pg_isready -h localhost -p "$PORT" >&2 || { echo "postgres.sh: PostgreSQL 15/main is not accepting connections on port $PORT" >&2; exit 1; }

psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -qtA -p $PORT $*"; }

if [ "$(psql_admin "-c \"SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'\"")" != "1" ]; then
  psql_admin "-c \"CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'\"" >&2
fi
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_database WHERE datname = '$DB'\"")" != "1" ]; then
  psql_admin "-c \"CREATE DATABASE $DB OWNER $ROLE\"" >&2
fi

echo "export COLLAPSELAB_TEST_PG_URL=postgresql+psycopg://$ROLE:$PASSWORD@localhost:$PORT/$DB"
