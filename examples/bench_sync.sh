#!/usr/bin/env bash
# Sync benchmark, in one run on one machine:
# 1. metadata: `ferry export --no-download` syncing a 30,000-revision catalog from `ferry serve`
#    on loopback (first sync, the unchanged re-sync, and a delta after the upstream grew);
# 2. payloads: `ferry export` downloading a ~4 GiB content tree from nginx on loopback (nginx
#    serves /Content/ from the upstream's tree and proxies the SOAP services to `ferry serve`),
#    next to `curl` fetching the same files with the same parallelism.
# Usage: examples/bench_sync.sh [WORKDIR] (build first: cargo build --release; needs nginx, curl)
set -euo pipefail
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
FERRY=${FERRY:-$EXAMPLES/../target/release/ferry}
WORK=${1:-/tmp/ferry-bench-sync}
UPDATES=${UPDATES:-30000}
PAYLOAD_UPDATES=${PAYLOAD_UPDATES:-4500}
PARALLEL=${PARALLEL:-4}
FERRY_PORT=18640
NGINX_PORT=18642
mkdir -p "$WORK" && cd "$WORK"

[ -f catalog/ferry.db ] || "$FERRY" dev synth --updates "$UPDATES" --data catalog >/dev/null
rm -rf upstream && cp -a catalog upstream # grown below; the next run starts from the same catalog
[ -f payloads/ferry.db ] || "$FERRY" dev synth --updates "$PAYLOAD_UPDATES" --payload-bytes 2MiB --data payloads >/dev/null
[ -f k.key ] || "$FERRY" keygen --out k >/dev/null 2>&1
# Every product and classification the generator uses, superseded included: the whole catalog.
cp "$EXAMPLES/bench-all.toml" all.toml
sed -e 's/bench-all/bench-metadata/' -e 's/payloads = "all"/payloads = "none"/' all.toml > metadata.toml

source "$EXAMPLES/bench_common.sh"
export_from() { # url cache profile [extra...]: prints ferry's report lines and the peak RSS
  local url=$1 cache=$2 profile=$3; shift 3
  /usr/bin/time -f "%M" -o rss.txt "$FERRY" export --upstream "$url" --cache "$cache" --profile "$profile" \
    --key k.key --out out --parallel "$PARALLEL" "$@" >log.txt 2>&1 || { cat log.txt; exit 1; }
  grep -E "^(synced|downloaded)" log.txt | sed 's/^/  /'
  echo "  peak RSS $(( $(cat rss.txt) / 1024 )) MiB (whole export: sync, download, packaging)"
}

echo "== metadata: $UPDATES-update catalog from ferry serve on loopback"
serve upstream $FERRY_PORT
rm -rf sync-cache out
t0=$(date +%s.%N)
export_from "http://127.0.0.1:$FERRY_PORT" sync-cache metadata.toml --no-download
t1=$(date +%s.%N)
printf '  first export (sync + package): %.1f s wall\n' "$(echo "$t1 - $t0" | bc)"
echo "-- unchanged: the second sync from the stored anchors"
export_from "http://127.0.0.1:$FERRY_PORT" sync-cache metadata.toml --no-download
echo "-- the upstream grows by 1,000 updates: a delta sync"
"$FERRY" dev synth --updates $((UPDATES + 1000)) --data upstream >/dev/null
sleep 1 # the upstream's snapshot follows its store
export_from "http://127.0.0.1:$FERRY_PORT" sync-cache metadata.toml --no-download

echo "== payloads: ferry export vs curl, from nginx on loopback"
serve payloads $((FERRY_PORT + 1))
start_nginx $NGINX_PORT "client_max_body_size 16m;
        location /Content/ { alias $WORK/payloads/content/; }
        location / { proxy_pass http://127.0.0.1:$((FERRY_PORT + 1)); proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
cat payloads/content/*/* >/dev/null # both clients read from nginx's page cache
rm -rf dl-cache out && sync
export_from "http://127.0.0.1:$NGINX_PORT" dl-cache all.toml
files=$(find dl-cache/content -type f | wc -l)
bytes=$(find dl-cache/content -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')
echo "  $files files, $((bytes / 1048576)) MiB"

find dl-cache/content -type f -printf '%P\n' |
  awk -v base="http://127.0.0.1:$NGINX_PORT/Content/" '{print "url = \"" base $0 "\"\noutput = \"curl-out/" $0 "\""}' > curl.cfg
for variant in "curl" "curl && sync"; do
  rm -rf curl-out && sync
  t0=$(date +%s.%N)
  if [ "$variant" = "curl" ]; then
    curl -sf --parallel --parallel-max "$PARALLEL" --create-dirs -K curl.cfg 2>/dev/null
  else
    curl -sf --parallel --parallel-max "$PARALLEL" --create-dirs -K curl.cfg 2>/dev/null && sync
  fi
  t1=$(date +%s.%N)
  printf '%-14s %d files in %.2f s: %.0f MB/s\n' "$variant" "$(find curl-out -type f | wc -l)" "$(echo "$t1 - $t0" | bc)" "$(echo "$bytes / ($t1 - $t0) / 1000000" | bc -l)"
done
