#!/usr/bin/env bash
# Bundle benchmark: packaging and importing ~4 GiB of payloads, next to tar and sha256sum on the
# same files and the same disk, in one run. Usage: examples/bench_bundle.sh [WORKDIR] [UPDATES]
# (build first: cargo build --release). Peak RSS from /usr/bin/time.
# With BASELINE=/path/to/an/older/ferry, that build imports and verifies the same bundle too.
set -euo pipefail
EXAMPLES=$(cd "$(dirname "$0")" && pwd)
FERRY=${FERRY:-$EXAMPLES/../target/release/ferry}
BASELINE=${BASELINE:-}
WORK=${1:-/tmp/ferry-bench-bundle}
UPDATES=${2:-4500}
mkdir -p "$WORK" && cd "$WORK"

if [ ! -d cache ]; then
  "$FERRY" dev synth --updates "$UPDATES" --payload-bytes 2MiB --data cache
fi
cp "$EXAMPLES/bench-all.toml" all.toml
[ -f k.key ] || "$FERRY" keygen --out k >/dev/null 2>&1
payload=$(du -sb cache/content | cut -f1)

measure() { # name command...
  local name=$1; shift
  sync
  local t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o rss.txt "$@" >/dev/null 2>err.txt || { cat err.txt; exit 1; }
  local t1=$(date +%s.%N)
  printf '%-28s %7.2f s  %7.0f MB/s  peak RSS %6.0f MiB\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$payload / ($t1 - $t0) / 1000000" | bc -l)" "$(echo "$(cat rss.txt) / 1024" | bc -l)"
}

echo "payloads: $(echo "$payload / 1048576" | bc) MiB in $(find cache/content -type f | wc -l) files"
rm -rf out t.tar
measure "ferry export (fsync)" "$FERRY" export --profile all.toml --key k.key --out out --cache cache --no-sync --full
bundle=$(ls -d out/bench-all-*)
measure "tar -c" tar -cf t.tar -C cache content; rm -f t.tar
measure "tar -c && sync" sh -c 'tar -cf t.tar -C cache content && sync'; rm -f t.tar
measure "tar -c | sha256sum" sh -c 'tar -cf - -C cache content | tee t.tar | sha256sum >/dev/null'; rm -f t.tar

rm -rf iso x; mkdir x
measure "ferry import (syncfs)" "$FERRY" --data iso import "$bundle" --trust k.pub
if [ -n "$BASELINE" ]; then
  rm -rf iso-baseline
  measure "baseline ferry import" "$BASELINE" --data iso-baseline import "$bundle" --trust k.pub
  rm -rf iso-baseline
fi
measure "tar -x" sh -c "for v in $bundle/vol-*.tar; do tar -xf \$v -C x; done"; rm -rf x; mkdir x
measure "tar -x && sync" sh -c "for v in $bundle/vol-*.tar; do tar -xf \$v -C x; done; sync"; rm -rf x; mkdir x
measure "sha256sum + tar -x" sh -c "sha256sum $bundle/vol-*.tar >/dev/null; for v in $bundle/vol-*.tar; do tar -xf \$v -C x; done"; rm -rf x
measure "ferry verify" "$FERRY" verify "$bundle" --trust k.pub
if [ -n "$BASELINE" ]; then
  measure "baseline ferry verify" "$BASELINE" verify "$bundle" --trust k.pub
fi
