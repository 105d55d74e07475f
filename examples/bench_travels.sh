#!/usr/bin/env bash
# What travels: bundle sizes for each profile setting (languages, express files, approved-only
# payloads) on one generated catalog with several languages and express files, and the dry run's
# time next to the real export's. Usage: examples/bench_travels.sh [WORKDIR] [UPDATES]
# (build first: cargo build --release).
set -euo pipefail
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
FERRY=${FERRY:-$EXAMPLES/../target/release/ferry}
WORK=${1:-/tmp/ferry-bench-travels}
UPDATES=${2:-4000}
mkdir -p "$WORK" && cd "$WORK"
[ -d cache ] || "$FERRY" dev synth --updates "$UPDATES" --languages en,de,fr,ja --payload-bytes ${PAYLOAD:-512KiB} --data cache >/dev/null
[ -f k.key ] || "$FERRY" keygen --out k >/dev/null 2>&1

profile() { # name settings...
  local name=$1; shift
  {
    echo "channel = \"$name\""
    echo 'products = ["Windows 11", "Office 2016", "Microsoft Server operating system-24H2"]'
    echo 'classifications = ["Security Updates", "Critical Updates", "Update Rollups", "Updates"]'
    printf '%s\n' "$@"
  } > "$name.toml"
}
profile en 'languages = ["en"]'
profile all-languages 'languages = ["all"]'
profile express 'languages = ["en"]' 'express = true'
profile approved 'languages = ["en"]' 'payloads = "approved"' '[approvals]' \
  'rules = [{ classifications = ["Security Updates"], group = "All Computers" }]'

seconds() { local t0=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $t0" | bc; }
printf '%-14s %12s %10s %8s %10s %10s\n' profile "bundle MiB" "payload" volumes "dry run s" "export s"
for p in en all-languages express approved; do
  rm -rf out
  dry=$(seconds "$FERRY" export --no-sync --cache cache --profile "$p.toml" --dry-run --json)
  json=$("$FERRY" export --no-sync --cache cache --profile "$p.toml" --dry-run --json)
  real=$(seconds "$FERRY" export --no-sync --cache cache --profile "$p.toml" --key k.key --out out --full)
  total=$(cat out/*/manifest.json | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["summary"]["total_bytes"])')
  echo "$json" | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d['total_bytes'] == $total, ('dry run', d['total_bytes'], 'export', $total)
print('%-14s %12.1f %10d %8d %10.2f %10.2f' % ('$p', d['total_bytes'] / 1048576, d['payload_files'], d['volumes'], $dry, $real))
print('    left behind: ' + ', '.join('%s %d files %.1f MiB' % (k, v['files'], v['bytes'] / 1048576) for k, v in d['left_behind'].items()))
"
done
rm -rf out
