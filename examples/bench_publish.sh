#!/usr/bin/env bash
# Publishing benchmark, in one run: `ferry publish --exe` of one large installer (read once:
# the CAB written, its Authenticode digest, SHA-1 and SHA-256 taken on the way, then moved into
# the store and ingested) against the stock tools doing the same work in steps: `gcab -c` (the
# CAB, uncompressed), `osslsigncode sign` (its signature), `sha1sum` and `sha256sum` (the
# digests the update's metadata carries). Wall time and peak RSS of each.
# Usage: examples/bench_publish.sh [WORKDIR] (build first: cargo build --release; needs gcab,
# osslsigncode; peak RSS is sampled from /proc).
set -euo pipefail
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
FERRY=${FERRY:-$EXAMPLES/../target/release/ferry}
WORK=${1:-/tmp/ferry-bench-publish}
MIB=${MIB:-1024}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"

"$FERRY" dev synth --updates 200 --data store >/dev/null
"$FERRY" publish cert new --bits 3072 --out site >/dev/null
head -c "$((MIB << 20))" /dev/urandom > setup.exe
sync

# Runs a command, printing its wall time and peak RSS (the largest of the process's VmHWM,
# sampled; children are measured by the same loop as they run).
measure() { # label command...
  local label=$1; shift
  local start end peak=0 pid
  start=$(date +%s.%N)
  "$@" >/dev/null &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    sleep 0.05
  done
  wait "$pid"
  end=$(date +%s.%N)
  printf '%-34s %7.2f s  peak RSS %5d MiB\n' "$label" "$(echo "$end - $start" | bc)" "$((peak / 1024))"
}

echo "== one ${MIB} MiB installer"
measure "ferry publish --exe (all of it)" "$FERRY" --data store publish --exe setup.exe \
  --vendor Contoso --product "Contoso Tools" --title "Contoso Tools 1" \
  --detect 'file:%ProgramFiles%\Contoso\tools.exe' --cert site.crt --key site.key
measure "gcab -c (the CAB)" gcab -c -n base.cab setup.exe
measure "osslsigncode sign (its signature)" osslsigncode sign -certs site.crt -key site.key \
  -h sha256 -in base.cab -out signed.cab
measure "sha1sum" sha1sum signed.cab
measure "sha256sum" sha256sum signed.cab
cab=$(ls store/content/*/*.cab | xargs ls -S | head -1)
echo "ferry's CAB verifies: $(osslsigncode verify -CAfile site.crt -in "$cab" 2>&1 | tail -1)"
