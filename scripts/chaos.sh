#!/usr/bin/env bash
# The chaos run (tests/integration/chaos.rs) at full length: 2 × serve, 2 × projector and
# 2 × worker all against one PostgreSQL and one Redis, with a fake GREEN-API; webhooks from 500
# chats and operator approvals while a random process is SIGKILLed every 5–10 s, PostgreSQL is
# restarted once, Redis is restarted once with nothing kept, and a poison event is stored. Checks
# losses, duplicates, `projections verify`, open jobs and the parked poison, and prints one line
# of figures. It restarts the local PostgreSQL and Redis: run it alone, not next to the tests.
# Usage: scripts/chaos.sh [seconds, default 180]
#   CHAOS_RATE sets the webhooks per second offered (default 20).
#   CHAOS_RELEASE=1 builds with optimisations.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

ensure_test_services

export CHAOS_SECONDS=${1:-180}
export CHAOS_FULL=1
profile=()
[ "${CHAOS_RELEASE:-0}" = 1 ] && profile=(--release)
cargo test "${profile[@]}" --locked --test integration --no-run
log=$(mktemp)
status=0
cargo test "${profile[@]}" --locked --test integration -- --exact chaos::chaos_run_loses_nothing_and_sends_nothing_twice \
  --nocapture --test-threads=1 >"$log" 2>&1 || status=$?
grep -E '^chaos:' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "the chaos run failed (full output: $log)" >&2
  grep -E 'panicked|assert' -A4 "$log" >&2 || true
fi
# Whatever happened, leave PostgreSQL and Redis running.
ensure_postgres
ensure_redis
exit "$status"
