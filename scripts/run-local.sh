#!/usr/bin/env bash
# Sets up and runs the whole system on this machine: local PostgreSQL and Redis (installed from
# the distribution's packages and started when missing), the database, migrations, then the
# server with every projector and worker in one process on http://127.0.0.1:${PORT:-5000}.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

require_cargo
ensure_postgres
ensure_redis
ensure_database aisales
ensure_chromium

cargo build --release --locked
BIN=${CARGO_TARGET_DIR:-target}/release/aisales
"$BIN" migrate
echo "starting aisales on port ${PORT:-5000} (Ctrl-C stops it)" >&2
exec "$BIN" serve --all
