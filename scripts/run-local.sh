#!/usr/bin/env bash
# Sets up and runs the whole system on this machine: local PostgreSQL and Redis (installed from
# the distribution's packages and started when missing), the database, migrations, ChromeDriver for
# vehicle lookups, then the server with every projector and worker in one process on
# http://127.0.0.1:${PORT:-5000}.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

require_cargo
ensure_postgres
ensure_redis
ensure_database aisales
ensure_chromium

# Secrets of this local setup, generated once and kept in .env (ignored by git), so that the server
# and the CLI (`aisales channel add …`, run from this directory) share the key that encrypts channel
# tokens, and sessions survive a restart. An existing .env is left as it is.
if [ ! -f .env ]; then
    (
        umask 077
        {
            echo "# Written by scripts/run-local.sh for this machine; every variable is in .env.example."
            echo "APP_ENV=development"
            echo "SESSION_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
            echo "INTEGRATION_SECRETS_MASTER_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
        } >.env
    )
    echo "wrote .env with generated SESSION_SECRET and INTEGRATION_SECRETS_MASTER_KEY" >&2
fi

cargo build --release --locked
BIN=${CARGO_TARGET_DIR:-target}/release/aisales
"$BIN" migrate

# ChromeDriver for the vehicle-lookup worker (WEBDRIVER_URL, default http://127.0.0.1:9515), unless
# one is already listening there or another WebDriver endpoint is configured; stopped with the server.
if [ -z "${WEBDRIVER_URL:-}" ] && ! (exec 3<>/dev/tcp/127.0.0.1/9515) 2>/dev/null; then
    chromedriver --port=9515 --allowed-ips=127.0.0.1 >"${TMPDIR:-/tmp}/aisales-chromedriver.log" 2>&1 &
    chromedriver_pid=$!
    trap 'kill "$chromedriver_pid" 2>/dev/null || true' EXIT
fi

echo "starting aisales on port ${PORT:-5000} (Ctrl-C stops it)" >&2
"$BIN" serve --all
