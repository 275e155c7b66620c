#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL, Redis and headless Chromium.
# Starts (and on a fresh Debian machine installs) whatever is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

ensure_test_services
ensure_chromium
ensure_promtool

exec cargo test --workspace --locked "$@"
