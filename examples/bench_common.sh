# Shared by the benchmark scripts (sourced after FERRY and the work directory are set):
# servers started in the background and stopped on exit, and their peak memory.
pids=()
stop_servers() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f nginx/nginx.pid ] && kill "$(cat nginx/nginx.pid)" 2>/dev/null || true
}
trap stop_servers EXIT
serve() { # data port: `ferry serve` (or $SERVER) on loopback, returning once /healthz answers
  "${SERVER:-$FERRY}" --data "$1" serve --listen "127.0.0.1:$2" 2>"serve-$2.log" &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return; sleep 0.2; done
  cat "serve-$2.log"; exit 1
}
peak_rss() { awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }
