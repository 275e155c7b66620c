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

echo "[start] applying database migrations"
if ! "$BIN" migrate; then
    echo "[start] migrations failed: not starting. Fix the database or the migration and restart." >&2
    exit 1
fi
if [ "$#" -eq 0 ]; then set -- serve --all; fi
echo "[start] starting: aisales $*"
exec "$BIN" "$@"
