#!/usr/bin/env bash
# Property-based fuzzing of the parsers that read outside input (tests/fuzz/): each target runs
# for a time budget and prints the cases it ran and its failures (a failure prints the shrunk input).
# Usage: scripts/fuzz.sh [seconds per target, default 60] [target filter...]
#   FUZZ_CASES sets the batch size (cases drawn with one random seed, default 256).
#   FUZZ_RELEASE=1 builds with optimisations (more cases per second, a longer first build).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
require_cargo

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(channels::green_api_webhooks channels::telegram_webhooks channels::whatsapp_webhooks detect::detection
           leads::json_lead_forms leads::urlencoded_lead_forms prices::price_list_import texts::contact_and_id_parsers
           texts::price_texts texts::model_answers texts::search_results texts::site_pages)
fi

profile=()
[ "${FUZZ_RELEASE:-0}" = 1 ] && profile=(--release)
cargo test "${profile[@]}" --locked --test fuzz --no-run || exit 1
failed=0
summary=()
for target in "${targets[@]}"; do
  log=$(mktemp)
  FUZZ_SECONDS=$seconds cargo test "${profile[@]}" --locked --test fuzz -- --exact "$target" --include-ignored --nocapture --test-threads=1 \
    >"$log" 2>&1
  status=$?
  line=$(grep -o -m1 'fuzz [a-z_]*: .* failures' "$log" || true)
  if [ $status -ne 0 ] || [ -z "$line" ]; then
    failed=1
    sed -n '/minimal input/,$p' "$log" | head -40
    [ -n "$line" ] || line="fuzz $target: no result (crashed, or no such target)"
    grep -m3 -E "panicked|overflow|SIGABRT|SIGSEGV" "$log" || true
  fi
  echo "$line"
  summary+=("$line")
  rm -f "$log"
done
echo
echo "== fuzz summary ($seconds s per target)"
printf '%s\n' "${summary[@]}"
exit $failed
