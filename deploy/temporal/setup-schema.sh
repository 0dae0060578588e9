#!/bin/sh
# Run once by the `temporal-schema` service (temporalio/admin-tools): creates Temporal's two
# PostgreSQL databases if missing and brings both schemas up to the version this image
# ships. Safe to run again: an existing database or schema version is left as it is.
# Also run outside Docker by devtools/cluster.py: `temporal-sql-tool` found on PATH, and
# TEMPORAL_SCHEMA_DIR pointing at the server module's schema/ (the image's is the default).
set -eu
: "${POSTGRES_SEEDS:?set POSTGRES_SEEDS}" "${POSTGRES_USER:?set POSTGRES_USER}"
port="${DB_PORT:-5432}"
schema="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema}"
sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"; }
for db in temporal temporal_visibility; do
  case $db in temporal) dir=temporal ;; *) dir=visibility ;; esac
  sql --db "$db" create || echo "database $db exists"
  sql --db "$db" setup-schema -v 0.0 || echo "schema of $db exists"
  sql --db "$db" update-schema -d "$schema/postgresql/v12/$dir/versioned"
done
echo "schemas ready"
