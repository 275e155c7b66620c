#!/bin/sh
# Container entry point (Nixpacks): apply migrations and, only if that succeeds, start.
# Arguments replace the default `serve --all` (one container runs every role).
set -eu
cd "$(dirname "$0")"
BIN=${AISALES_BIN:-}
if [ -z "$BIN" ]; then
    for candidate in ./bin/aisales ./target/release/aisales; do
        if [ -x "$candidate" ]; then BIN=$candidate; break; fi
    done
fi
[ -n "$BIN" ] || { echo "[start] aisales binary not found (build it with cargo build --release)" >&2; exit 1; }

# A deployment is production unless its environment says otherwise: to the binary an unset APP_ENV
# means development (no GREEN-API host allow-list, no Secure cookies). Exported, it also wins over
# an APP_ENV in .env.
if [ -z "${APP_ENV:-}" ] && [ -z "${NODE_ENV:-}" ]; then
    APP_ENV=production
    export APP_ENV
fi

echo "[start] applying database migrations"
if ! "$BIN" migrate; then
    echo "[start] migrations failed: not starting. Fix the database or the migration and restart." >&2
    exit 1
fi
if [ "$#" -eq 0 ]; then set -- serve --all; fi
echo "[start] starting: aisales $*"
exec "$BIN" "$@"
