#!/usr/bin/env bash
# Price-lookup benchmarks:
#   1. a whole lookup through the bus and a separate `aisales worker price-lookup` process, on the
#      fake search API and eight fake listing pages (p50/p95), and the worker's resident memory;
#   2. the statistics over 10,000 listings, and the normalisation of 10,000 raw listings.
# Usage: scripts/bench-price.sh [--release]   (BENCH_LOOKUPS=N sets the number of lookups, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

ensure_test_services

profile=()
if [ "${1:-}" = "--release" ]; then profile=(--release); fi

echo "== price lookup: latency over eight fake pages and worker memory"
cargo test "${profile[@]}" --locked --test integration price_lookups::bench_price_lookup_latency_and_worker_memory \
    -- --ignored --nocapture 2>&1 | grep -E '^(price lookups|request to priced|price worker RSS|test result)'

echo "== price statistics"
cargo bench --locked -p aisales-domain --bench price_stats
