#!/usr/bin/env bash
# Server benchmark: `ferry dev loadgen` against `ferry serve` over a 30,000-revision synthetic
# catalog with 1,000 approved updates, then the same load against nginx serving the answers ferry
# gave (recorded) as static files; then wrk with 1 MiB ranges against ferry and against nginx
# serving the same content tree. All in one run, on one machine.
# Usage: examples/bench_server.sh [WORKDIR] (build first: cargo build --release; needs nginx, wrk)
# With BASELINE=/path/to/an/older/ferry, the scan and content loads also run against that build's
# server, on the same catalog in the same run (the load generator is always this build's).
set -euo pipefail
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
FERRY=${FERRY:-$EXAMPLES/../target/release/ferry}
BASELINE=${BASELINE:-}
WORK=${1:-/tmp/ferry-bench-server}
DURATION=${DURATION:-20}
FERRY_PORT=18630
NGINX_PORT=18631
mkdir -p "$WORK" && cd "$WORK"

if [ ! -f catalog/ferry.db ]; then
  "$FERRY" dev synth --updates 30000 --data catalog
  # Unapproved leaves out expired updates, which cannot be approved (as in WSUS).
  "$FERRY" --data catalog updates list --approval unapproved --ids > ids.txt
  head -1000 ids.txt | "$FERRY" --data catalog updates approve -
fi
if [ ! -f content/ferry.db ]; then
  # Few, large payloads for the ranged-content benchmark.
  "$FERRY" dev synth --updates 200 --payload-bytes 8MiB --data content
fi

source "$EXAMPLES/bench_common.sh"

scans() { # name: the scan loads against the server on FERRY_PORT
  for clients in 50 200; do
    "$FERRY" dev loadgen --url "http://127.0.0.1:$FERRY_PORT" --no-download --clients $clients --duration "$DURATION" | tee "$1-$clients.txt"
  done
  echo "-- repeat scans (warm cache), and first scans with downloads"
  "$FERRY" dev loadgen --url "http://127.0.0.1:$FERRY_PORT" --clients 200 --duration "$DURATION" --mode repeat | sed -n 1p
  "$FERRY" dev loadgen --url "http://127.0.0.1:$FERRY_PORT" --clients 50 --duration "$DURATION" | sed -n 1p
}

if [ -n "$BASELINE" ]; then
  # The same catalog (synth is deterministic) and approvals, in the store format that build knows.
  if [ ! -f catalog-baseline/ferry.db ]; then
    "$BASELINE" dev synth --updates 30000 --data catalog-baseline
    head -1000 ids.txt | "$BASELINE" --data catalog-baseline updates approve -
  fi
  echo "== scans: ferry serve, baseline build ($BASELINE)"
  SERVER="$BASELINE" serve catalog-baseline $FERRY_PORT
  scans baseline
  echo "baseline peak RSS: $(peak_rss "${pids[-1]}")"
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
fi

echo "== scans: ferry serve"
serve catalog $FERRY_PORT
ferry_pid=${pids[-1]}
rm -rf answers && "$FERRY" dev loadgen --url "http://127.0.0.1:$FERRY_PORT" --record answers
# Scans without downloads (the content benchmark is below), so that nginx serves the same work.
scans ferry
echo "ferry serve peak RSS: $(peak_rss "$ferry_pid")"

# nginx serves the recorded answers (WORK/answers/answers/<key>.xml) and the content store.
start_nginx $NGINX_PORT "location /answers/ { root $WORK/answers; } location /Content/ { alias $WORK/content/content/; }"
echo "== scans: nginx serving the recorded answers"
for clients in 50 200; do
  "$FERRY" dev loadgen --url "http://127.0.0.1:$NGINX_PORT" --static-answers --no-download --clients $clients --duration "$DURATION" | tee "nginx-$clients.txt"
done

echo "== content: wrk, 1 MiB ranges"
kill "$ferry_pid"; wait "$ferry_pid" 2>/dev/null || true
serve content $FERRY_PORT
find content/content -type f -size +1M -printf '/Content/%P %s\n' > files.txt
cat > ranges.lua <<'LUA'
local files = {}
init = function(args)
  for line in io.lines(args[1]) do
    local path, size = line:match("(%S+) (%d+)")
    table.insert(files, { path = path, size = tonumber(size) })
  end
end
request = function()
  local f = files[math.random(#files)]
  local pieces = math.floor(f.size / 1048576)
  local start = math.random(0, pieces - 1) * 1048576
  return wrk.format("GET", f.path, { ["Range"] = "bytes=" .. start .. "-" .. (start + 1048575) })
end
LUA
cat content/content/*/* > /dev/null # both servers read from the page cache
ranges() { # name port
  echo "-- $1"
  wrk -t2 -c32 -d"${DURATION}s" -s ranges.lua "http://127.0.0.1:$2" -- "$WORK/files.txt" | grep -E "Requests/sec|Transfer/sec|Latency"
}
ranges ferry $FERRY_PORT
ranges nginx $NGINX_PORT
if [ -n "$BASELINE" ]; then
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  [ -f content-baseline/ferry.db ] || "$BASELINE" dev synth --updates 200 --payload-bytes 8MiB --data content-baseline
  SERVER="$BASELINE" serve content-baseline $FERRY_PORT
  ranges baseline $FERRY_PORT
fi
