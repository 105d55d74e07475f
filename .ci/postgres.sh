#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, from Debian's packages (postgresql).
#   .ci/postgres.sh start      prints "DIR URL": the cluster's folder and a superuser URL
#   .ci/postgres.sh stop DIR   stops it and removes the folder
# fsync is off (a test cluster loses nothing worth keeping); PG_FSYNC=on for benchmarks.
#   .ci/postgres.sh pause DIR  stops it, keeping it (a database lost while ferry serves)
#   .ci/postgres.sh resume DIR starts it again on the same port
# PostgreSQL will not run as root: as root, the cluster belongs to the `postgres` user.
set -euo pipefail

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

case "${1:-}" in
start)
  dir=$(mktemp -d /tmp/ferry-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log"
  options="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c max_connections=200"
  echo "$options" >"$dir/options"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$options" start >/dev/null
  echo "$dir postgres://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  dir=${2:?the folder start printed}
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
pause)
  dir=${2:?the folder start printed}
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
resume)
  dir=${2:?the folder start printed}
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$(cat "$dir/options")" start >/dev/null
  ;;
*)
  echo "usage: $0 start | stop DIR | pause DIR | resume DIR" >&2; exit 2
  ;;
esac
