#!/usr/bin/env bash
# SyncUpdates round trips of a first scan (WUA gives up after 200): `ferry dev loadgen --once`, a
# simulated machine every update applies to, against `ferry serve` over generated catalogs of
# 10,000, 30,000 and 100,000 revisions. The limit of the simulated scan is lifted, so a server
# whose scans would fail still shows how many calls they need.
# Usage: examples/bench_round_trips.sh [WORKDIR] (build first: cargo build --release; needs curl)
# With BASELINE=/path/to/an/older/ferry, each catalog is also served by that build (the scanning
# client is always this build's). SIZES="10000 30000" chooses the catalogs.
set -euo pipefail
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
FERRY=${FERRY:-$EXAMPLES/../target/release/ferry}
BASELINE=${BASELINE:-}
WORK=${1:-/tmp/ferry-bench-round-trips}
SIZES=${SIZES:-10000 30000 100000}
PORT=18650
mkdir -p "$WORK" && cd "$WORK"
source "$EXAMPLES/bench_common.sh"

scan() { # server data: one first scan, one line of results
  SERVER="$1" serve "$2" $PORT
  "$FERRY" dev loadgen --url "http://127.0.0.1:$PORT" --once --max-sync-calls 100000 --json |
    python3 -c 'import json, sys; s = json.load(sys.stdin); s["mib"] = s["sync_answer_bytes"] / 2**20
print("%(sync_calls)6d calls %(new_updates)7d updates   largest page %(largest_page)5d   largest answer %(largest_answer_bytes)9d B   %(mib)7.1f MiB in all" % s)'
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
}

for n in $SIZES; do
  # Generated catalogs grow like an upstream: a larger one extends a smaller one.
  [ -f "catalog-$n/ferry.db" ] || "$FERRY" dev synth --updates "$n" --payload-bytes 1000 --data "catalog-$n" >/dev/null
  "$FERRY" --data "catalog-$n" status | grep -E '^(scans|warning)' || true
  if [ -n "$BASELINE" ]; then
    printf '%7d revisions, baseline: ' "$n"
    scan "$BASELINE" "catalog-$n"
  fi
  printf '%7d revisions, this build: ' "$n"
  scan "$FERRY" "catalog-$n"
done
