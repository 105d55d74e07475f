#!/usr/bin/env bash
# One SyncUpdates page, repeated: `wrk -t2 -c32` POSTs the request of a typical page (the
# median-sized answer of a first scan of a 10,000-update catalog) to `ferry serve`, plain and
# with `Accept-Encoding: xpress`, and POSTs the same request to nginx serving the same answer
# bytes (plain, and as ferry's xpress stream) as static files, as the issue asks; nginx's rate
# for plain GETs of the files is shown beside it. All in one run, on one machine.
# Usage: examples/bench_answers.sh [WORKDIR] (build first: cargo build --release; needs nginx, wrk, curl)
set -euo pipefail
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
FERRY=${FERRY:-$EXAMPLES/../target/release/ferry}
WORK=${1:-/tmp/ferry-bench-answers}
DURATION=${DURATION:-10}
UPDATES=${UPDATES:-10000}
FERRY_PORT=18640
NGINX_PORT=18641
mkdir -p "$WORK" && cd "$WORK"
source "$EXAMPLES/bench_common.sh"

[ -f catalog/ferry.db ] || "$FERRY" dev synth --updates "$UPDATES" --data catalog
serve catalog $FERRY_PORT
rm -rf rec && "$FERRY" dev loadgen --url "http://127.0.0.1:$FERRY_PORT" --profiles 1 --record rec 2>/dev/null

# The first scan's SyncUpdates answers of the first profile, by size; the median one.
pages=()
for r in rec/answers/0-first-*.request; do
  grep -q "<SyncUpdates " "$r" && pages+=("$(stat -c %s "${r%.request}.xml") ${r%.request}")
done
median=$(printf '%s\n' "${pages[@]}" | sort -n | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}')
echo "first scan: ${#pages[@]} SyncUpdates pages; the median one: $(stat -c %s "$median.xml") bytes, $(grep -o '<UpdateInfo>' "$median.xml" | wc -l) updates"

action='"http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService/SyncUpdates"'
post() { # accept-encoding, output: one POST of the page's request
  curl -sf -o "$2" -H "Content-Type: text/xml; charset=utf-8" -H "SOAPAction: $action" \
    -H "Accept-Encoding: $1" --data-binary "@$median.request" "http://127.0.0.1:$FERRY_PORT/ClientWebService/client.asmx"
}
mkdir -p www/answers
post identity www/answers/page.xml
post xpress www/answers/page.xpress
echo "answer: $(stat -c %s www/answers/page.xml) bytes plain, $(stat -c %s www/answers/page.xpress) as xpress"

cat > post.lua <<'LUA'
local f = io.open(os.getenv("REQUEST"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = os.getenv("ACTION")
if os.getenv("XPRESS") == "1" then wrk.headers["Accept-Encoding"] = "xpress" end
LUA

# nginx's static module refuses POST (405); `error_page` turns that into the file, so nginx reads
# the same request bodies as ferry does.
start_nginx $NGINX_PORT "location /answers/ { root $WORK/www; error_page 405 =200 \$uri; }"

run() { # label, then wrk's arguments
  local label=$1; shift
  printf '%-38s' "$label"
  wrk -t2 -c32 -d"${DURATION}s" "$@" | awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2} /^ +Latency/ {l=$2} END {printf "%10s req/s %10s/s  latency avg %s\n", r, t, l}'
}
export REQUEST="$WORK/$median.request" ACTION="$action"
# Rounds, each all six runs: on two cores shared with wrk, nginx's rate moves with how its
# workers happen to split the connections (86k to 126k answers/s seen), so each round is shown.
for round in $(seq "${ROUNDS:-3}"); do
  echo "round $round"
  run "ferry serve, plain" -s post.lua "http://127.0.0.1:$FERRY_PORT/ClientWebService/client.asmx"
  run "nginx, POST, the same bytes" -s post.lua "http://127.0.0.1:$NGINX_PORT/answers/page.xml"
  run "nginx, GET, the same bytes" "http://127.0.0.1:$NGINX_PORT/answers/page.xml"
  XPRESS=1 run "ferry serve, xpress" -s post.lua "http://127.0.0.1:$FERRY_PORT/ClientWebService/client.asmx"
  run "nginx, POST, the same xpress bytes" -s post.lua "http://127.0.0.1:$NGINX_PORT/answers/page.xpress"
  run "nginx, GET, the same xpress bytes" "http://127.0.0.1:$NGINX_PORT/answers/page.xpress"
done
curl -s "http://127.0.0.1:$FERRY_PORT/metrics" | grep -E "^ferry_answer_cache_(hits|misses)_total|^ferry_answer_cache_bytes|^ferry_request_shape_(hits|misses)_total"
echo "ferry serve peak RSS: $(peak_rss "${pids[-1]}")"
