#!/usr/bin/env bash
# Vehicle-lookup benchmarks:
#   1. lookup latency through a separate `aisales worker vehicle-lookup` process on the local fixture
#      sites with real headless Chromium (p50/p95, browser session acquisition included), and the
#      worker's resident memory while it runs (the browsers are ChromeDriver's, not counted);
#   2. detection throughput on one core (typical ~100-character customer messages).
# Usage: scripts/bench-lookup.sh [--release]   (BENCH_LOOKUPS=N sets the number of lookups, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

ensure_test_services
ensure_chromium

profile=()
if [ "${1:-}" = "--release" ]; then profile=(--release); fi

echo "== vehicle lookup: latency on the fixture sites and worker memory"
cargo test "${profile[@]}" --locked --test integration vehicle_lookup::bench_lookup_latency_and_worker_memory \
    -- --ignored --nocapture 2>&1 | grep -E '^(lookup|browser attempt|request to answer|worker RSS|test result)'

echo "== detection throughput (one core)"
taskset -c 0 cargo bench --locked -p aisales-domain --bench detect 2>/dev/null \
    || cargo bench --locked -p aisales-domain --bench detect
