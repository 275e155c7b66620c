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
  targets=(green_api_webhooks telegram_webhooks whatsapp_webhooks detection json_lead_forms urlencoded_lead_forms
           price_list_import contact_and_id_parsers price_texts model_answers search_results_and_pages)
fi

profile=()
[ "${FUZZ_RELEASE:-0}" = 1 ] && profile=(--release)
cargo test "${profile[@]}" --locked --test fuzz --no-run || exit 1
failed=0
summary=()
for target in "${targets[@]}"; do
  log=$(mktemp)
  FUZZ_SECONDS=$seconds cargo test "${profile[@]}" --locked --test fuzz -- --exact "$target" --nocapture --test-threads=1 \
    >"$log" 2>&1
  status=$?
  line=$(grep -m1 '^fuzz ' "$log" || true)
  if [ $status -ne 0 ]; then
    failed=1
    sed -n '/minimal input/,$p' "$log" | head -40
    [ -n "$line" ] || line="fuzz $target: crashed (see above)"
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
