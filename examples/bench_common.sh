# Shared by the benchmark scripts (sourced after FERRY and the work directory are set):
# servers started in the background and stopped on exit, and their peak memory.
pids=()
stop_servers() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f nginx/nginx.pid ] && kill "$(cat nginx/nginx.pid)" 2>/dev/null || true
}
trap stop_servers EXIT
serve() { # data port: `ferry serve` (or $SERVER, with $SERVE_ARGS) on loopback, returning once /healthz answers
  # shellcheck disable=SC2086 # SERVE_ARGS is a list of arguments
  "${SERVER:-$FERRY}" --data "$1" serve --listen "127.0.0.1:$2" ${SERVE_ARGS:-} 2>"serve-$2.log" &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return; sleep 0.2; done
  cat "serve-$2.log"; exit 1
}
peak_rss() { awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }
start_nginx() { # port, then the server block's directives: nginx on loopback, stopped on exit
  local port=$1; shift
  mkdir -p nginx
  cat > nginx/nginx.conf <<CONF
worker_processes auto;
pid $PWD/nginx/nginx.pid;
error_log $PWD/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    types { text/xml xml; }
    server {
        listen 127.0.0.1:$port;
        $*
    }
}
CONF
  nginx -c "$PWD/nginx/nginx.conf"
  sleep 0.5
}
