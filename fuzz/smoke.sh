#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 30), starting from the committed
# regression inputs (fuzz/regressions/<target>/) and, when fuzz/seeds.sh made them, the seed
# corpora (fuzz/corpus/<target>/). Exits non-zero when any target crashes, panics, times out or
# runs out of memory; the inputs that did are in fuzz/artifacts/<target>/.
#
#   fuzz/smoke.sh [SECONDS]
#   FUZZ_TIMEOUT=10 (seconds per input)  FUZZ_RSS_MB=2048  FUZZ_TARGETS="soap_request ..."
#
# Needs rustup with a nightly toolchain; installs cargo-fuzz when it is missing.
set -uo pipefail

SECONDS_PER_TARGET=${1:-30}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}
FUZZ=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$FUZZ/.." && pwd)
cd "$ROOT" || exit 2

if ! cargo +nightly fuzz --version > /dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo +nightly install cargo-fuzz --locked || exit 2
fi

TARGETS=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
echo "building: $(echo $TARGETS)"
cargo +nightly fuzz build || exit 2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=()
for target in $TARGETS; do
    # New inputs go to a scratch directory (the first one given), never into the repository.
    dirs=("$WORK/$target")
    mkdir -p "$WORK/$target" "$FUZZ/artifacts/$target"
    [ -d "$FUZZ/regressions/$target" ] && dirs+=("$FUZZ/regressions/$target")
    [ -d "$FUZZ/corpus/$target" ] && dirs+=("$FUZZ/corpus/$target")
    echo "== $target: ${SECONDS_PER_TARGET}s from ${dirs[*]:1}"
    if cargo +nightly fuzz run "$target" "${dirs[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
        -print_final_stats=1 > "$WORK/$target.log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done' "$WORK/$target.log" | tr '\n' ' '
        echo
    else
        echo "FAILED: $target"
        { grep -E -A1 'panicked at' "$WORK/$target.log"; grep -E 'ERROR: libFuzzer|^SUMMARY|Test unit written to' "$WORK/$target.log"; } |
            cut -c1-300 | head -20
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz smoke test failed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)"
    exit 1
fi
echo "fuzz smoke test passed: $(echo $TARGETS)"
