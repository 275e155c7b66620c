#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL, Redis and headless Chromium.
# Starts (and on a fresh Debian machine installs) whatever is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

require_cargo
ensure_postgres
ensure_redis
ensure_database aisales
ensure_chromium
ensure_promtool

export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://aisales:aisales@127.0.0.1:5432/postgres}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/}
exec cargo test --workspace --locked "$@"
