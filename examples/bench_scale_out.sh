#!/usr/bin/env bash
# Scale-out benchmark, in one run on one machine: the same 30,000-revision catalog with 1,000
# approved updates served by one front end on SQLite, one on PostgreSQL, and two on PostgreSQL
# behind HAProxy on manifests/haproxy.cfg; `ferry dev loadgen` first and repeat scans against each
# (scans/s, p99 per operation), each front end's peak RSS and PostgreSQL's own CPU seconds. Then
# the import of one bundle into a new SQLite store and into a new PostgreSQL database.
# Usage: examples/bench_scale_out.sh [WORKDIR] (build first: cargo build --release; needs
# PostgreSQL's server package (Debian's postgresql), haproxy, curl).
set -euo pipefail
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
ROOT=$EXAMPLES/..
FERRY=${FERRY:-$ROOT/target/release/ferry}
WORK=${1:-/tmp/ferry-bench-scale-out}
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-200}
mkdir -p "$WORK" && cd "$WORK"
source "$EXAMPLES/bench_common.sh"

# A cluster that syncs its writes, as SQLite does: the comparison is like for like.
read -r pg_dir admin_url < <(PG_FSYNC=on "$ROOT/.ci/postgres.sh" start)
stop_all() { stop_servers; [ -f haproxy.pid ] && kill "$(cat haproxy.pid)" 2>/dev/null; "$ROOT/.ci/postgres.sh" stop "$pg_dir"; }
trap stop_all EXIT
base=${admin_url%/*}
postmaster=$(head -1 "$pg_dir/data/postmaster.pid")
psql() { command psql -q "$admin_url" "$@"; }

# CPU seconds PostgreSQL spent so far: the server's live processes and its exited children.
pg_cpu() {
  local ticks=0 pid
  for pid in $(pgrep -u postgres postgres); do
    ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  ticks=$((ticks + $(awk '{print $16 + $17}' "/proc/$postmaster/stat")))
  echo "scale=1; $ticks / $(getconf CLK_TCK)" | bc
}

echo "== the catalog (synth is deterministic: the same on both engines)"
"$FERRY" dev synth --updates 30000 --data sqlite >/dev/null
"$FERRY" --data sqlite updates list --approval unapproved --ids > unapproved.txt
head -1000 unapproved.txt > approve.txt
"$FERRY" --data sqlite updates approve - < approve.txt >/dev/null
psql -c "CREATE DATABASE bench"
on_pg() { FERRY_DATABASE_URL=$base/bench "$FERRY" --data shared "$@"; }
on_pg dev synth --updates 30000 >/dev/null
on_pg updates approve - < approve.txt >/dev/null

load() { # name url
  echo "-- $1: first scans, $CLIENTS clients, ${DURATION}s"
  local before=$(pg_cpu)
  "$FERRY" dev loadgen --url "$2" --no-download --clients "$CLIENTS" --duration "$DURATION" | tee "$1-first.txt"
  echo "   PostgreSQL CPU: $(echo "$(pg_cpu) - $before" | bc) s"
  echo "-- $1: repeat scans"
  before=$(pg_cpu)
  "$FERRY" dev loadgen --url "$2" --no-download --clients "$CLIENTS" --duration "$DURATION" --mode repeat | tee "$1-repeat.txt"
  echo "   PostgreSQL CPU: $(echo "$(pg_cpu) - $before" | bc) s"
}

echo "== one front end on SQLite"
serve sqlite 18701
load sqlite http://127.0.0.1:18701
echo "   peak RSS: $(peak_rss "${pids[-1]}")"; kill "${pids[-1]}"

echo "== one front end on PostgreSQL"
FERRY_DATABASE_URL=$base/bench serve shared 18702
load postgres http://127.0.0.1:18702
echo "   peak RSS: $(peak_rss "${pids[-1]}")"; kill "${pids[-1]}"

echo "== two front ends on PostgreSQL behind HAProxy (manifests/haproxy.cfg)"
fe() { # port: a front end behind the balancer, up once it answers a PROXY-headed /healthz
  FERRY_DATABASE_URL=$base/bench "$FERRY" --data shared serve --listen "127.0.0.1:$1" --proxy-protocol 2>"serve-$1.log" &
  pids+=($!)
  for _ in $(seq 100); do
    printf 'PROXY UNKNOWN\r\nGET /healthz HTTP/1.0\r\n\r\n' | timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; cat >&3; cat <&3" 2>/dev/null | grep -q '200 OK' && return
    sleep 0.2
  done
  cat "serve-$1.log"; exit 1
}
fe 18711; a=${pids[-1]}
fe 18712; b=${pids[-1]}
sed -e 's/bind :8530/bind 127.0.0.1:18710/' -e 's/10.0.0.11:8530/127.0.0.1:18711/' -e 's/10.0.0.12:8530/127.0.0.1:18712/' \
    -e 's/maxconn 20000/maxconn 4000/' -e '/^frontend wsus_https/,/^$/d' -e '/^backend ferry_https/,$d' \
    "$ROOT/manifests/haproxy.cfg" > haproxy.cfg
haproxy -D -p "$PWD/haproxy.pid" -f haproxy.cfg
for _ in $(seq 50); do curl -sf http://127.0.0.1:18710/healthz >/dev/null && break; sleep 0.2; done
load two-postgres http://127.0.0.1:18710
echo "   peak RSS: front end 1 $(peak_rss "$a"), front end 2 $(peak_rss "$b")"
kill "$(cat haproxy.pid)" "$a" "$b"; rm -f haproxy.pid

echo "== import of one bundle (the catalog's payloads and metadata)"
cp "$EXAMPLES/bench-all.toml" all.toml
[ -f k.key ] || "$FERRY" keygen --out k >/dev/null 2>&1
rm -rf out && "$FERRY" export --profile all.toml --key k.key --out out --cache sqlite --no-sync --full >/dev/null
bundle=$(ls -d out/bench-all-*)
echo "bundle: $(du -sh "$bundle" | cut -f1)"
timed_import() { # name, then ferry's global options
  local name=$1; shift
  local t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o rss.txt "$FERRY" "$@" import "$bundle" --trust k.pub >/dev/null 2>err.txt || { cat err.txt; exit 1; }
  printf '%-22s %7.2f s  peak RSS %5.0f MiB\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" "$(echo "$(cat rss.txt) / 1024" | bc -l)"
}
for round in 1 2; do
  rm -rf import-sqlite import-pg
  psql -c "DROP DATABASE IF EXISTS imported" -c "CREATE DATABASE imported"
  timed_import "import into SQLite" --data import-sqlite
  before=$(pg_cpu)
  timed_import "import into PostgreSQL" --data import-pg --database "$base/imported"
  echo "   PostgreSQL CPU: $(echo "$(pg_cpu) - $before" | bc) s (round $round)"
done
