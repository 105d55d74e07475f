#!/usr/bin/env bash
# Bundle benchmark: packaging and importing ~4 GiB of payloads, next to tar and sha256sum on the
# same files and the same disk, in one run. Usage: examples/bench_bundle.sh [WORKDIR] [UPDATES]
# (build first: cargo build --release). Peak RSS from /usr/bin/time. RUNS: alternating export /
# tar -c && sync runs of each (default 3); UPDATES=430 makes ~450 MiB of payloads.
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

# Export against its limit, the durable copy of the same files (`tar -c && sync`, same disk), in
# alternating runs after one unmeasured run of each (a shared machine drifts; the first writes
# after a pause are slow on some VMs): medians of wall, user and system seconds.
alternate() { # runs
  local runs=$1 i
  timed() { # name command...: one run, from an empty output and a clean page cache state
    local name=$1; shift
    rm -rf alt-out alt.tar; sync
    /usr/bin/time -f "$name %e %U %S" -a -o alt-times.txt "$@" >/dev/null 2>err.txt || { cat err.txt; exit 1; }
  }
  export_once() { timed "$1" "$FERRY" export --profile all.toml --key k.key --out alt-out --cache cache --no-sync --full; }
  tar_once() { timed "$1" sh -c 'tar -cf alt.tar -C cache content && sync'; }
  : >alt-times.txt
  export_once warmup; tar_once warmup
  for i in $(seq "$runs"); do export_once export; tar_once tar; done
  rm -rf alt-out alt.tar
  median() { grep "^$1 " alt-times.txt | awk -v c="$2" '{print $c}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  for name in export tar; do
    printf '%-28s %7.2f s  user %5.2f s  sys %5.2f s  (median of %d, alternating)\n' \
      "$([ $name = tar ] && echo "tar -c && sync" || echo "ferry export (fsync)")" "$(median $name 2)" "$(median $name 3)" "$(median $name 4)" "$runs"
  done
  printf 'export speed / (tar -c && sync) speed: %.2f\n' "$(echo "$(median tar 2) / $(median export 2)" | bc -l)"
}

echo "payloads: $(echo "$payload / 1048576" | bc) MiB in $(find cache/content -type f | wc -l) files"
alternate "${RUNS:-3}"
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
