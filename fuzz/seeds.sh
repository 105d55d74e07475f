#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (git-ignored).
#
#   fuzz/seeds.sh            # everything
#   FERRY_CONFORMANCE=DIR    # where the conformance material is (default: ../shared/conformance
#                            # beside the project checkout, as the tests use it)
#
# Real SOAP requests and update documents are read from the conformance material at run time
# (never copied into the repository). Manifests, signatures, keys, volumes and metadata members
# come from running the real binary: `ferry dev synth`, `ferry keygen`, `ferry export` (tar and
# zip, a full bundle and a delta). Without the conformance material only the generated seeds
# are made.
set -euo pipefail

FUZZ=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$FUZZ/.." && pwd)
CONF=${FERRY_CONFORMANCE:-$ROOT/../shared/conformance}
CORPUS=$FUZZ/corpus
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-seeds.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$CORPUS"/{soap_request,update_document,manifest_signature,volume_walker,metadata_record}

# Names a seed by its content (the same input is never stored twice).
seed() { # seed TARGET FILE [PREFIX-BYTE-IN-OCTAL]
    local target=$1 file=$2 tmp
    tmp=$(mktemp "$WORK/seed.XXXXXX")
    if [ $# -ge 3 ]; then printf "\\$3" > "$tmp"; fi
    cat "$file" >> "$tmp"
    mv "$tmp" "$CORPUS/$target/$(sha1sum "$tmp" | cut -c1-40)"
}

# ---------------------------------------------------------------- conformance material
if [ -d "$CONF" ]; then
    n=0
    while IFS= read -r -d '' f; do seed soap_request "$f"; n=$((n + 1)); done < <(
        find "$CONF/wua-native" "$CONF/wsusss" -name request.body -print0
        find "$CONF/samples" -iname '*request*.xml' -print0
    )
    echo "soap_request: $n requests from $CONF"
    n=0
    while IFS= read -r -d '' f; do seed update_document "$f"; n=$((n + 1)); done < <(
        find "$CONF/samples" -name '*.full.xml' -print0
        find "$CONF/wsusss/docs" -name '*.xml' -print0
    )
    echo "update_document: $n documents from $CONF"
else
    echo "no conformance material at $CONF: only generated seeds" >&2
fi

# ---------------------------------------------------------------- bundles made by ferry
FERRY=$ROOT/target/release/ferry
if [ ! -x "$FERRY" ] || [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" -newer "$FERRY" -print -quit)" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi

export_bundles() { # export_bundles NAME UPDATES PAYLOAD-BYTES
    local name=$1 updates=$2 payload=$3 dir=$WORK/$1 format
    mkdir -p "$dir"
    "$FERRY" keygen --out "$dir/key" > /dev/null 2>&1
    # The repository's profile, plus approvals so that manifests carry an approval policy.
    cp "$ROOT/manifests/windows11-security.toml" "$dir/profile.toml"
    printf '\n[approvals]\nrules = [{ classifications = ["Security Updates"], products = ["Windows 11"], group = "Workstations", deadline_days = 7 }]\n' >> "$dir/profile.toml"
    # One cache per format: a cache remembers what its channel already exported.
    for format in tar zip; do
        "$FERRY" --data "$dir/cache-$format" dev synth --updates "$updates" --payload-bytes "$payload" > /dev/null
        "$FERRY" export --no-sync --profile "$dir/profile.toml" --key "$dir/key.key" --out "$dir/out-$format" \
            --cache "$dir/cache-$format" --volume-size 1MiB --format "$format" > /dev/null
    done
    # A delta: the catalog grows, the channel's next bundle carries the difference.
    "$FERRY" --data "$dir/cache-tar" dev synth --updates $((updates + updates / 4 + 1)) --payload-bytes "$payload" > /dev/null
    "$FERRY" export --no-sync --profile "$dir/profile.toml" --key "$dir/key.key" --out "$dir/out-tar" \
        --cache "$dir/cache-tar" --volume-size 1MiB --format tar > /dev/null
}

export_bundles large 200 4KiB
export_bundles small 60 512

n=0
while IFS= read -r -d '' f; do seed manifest_signature "$f"; n=$((n + 1)); done < <(
    find "$WORK" \( -name manifest.json -o -name manifest.json.minisig -o -name 'key.pub' -o -name 'key.key' \) -print0
)
echo "manifest_signature: $n manifests, signatures and keys"

# Volumes: the first byte says how the target reads them (bit 0: zip, bit 1: hash the volume).
n=0
while IFS= read -r -d '' f; do
    case $f in
        *.tar) seed volume_walker "$f" 000; seed volume_walker "$f" 002 ;;
        *.zip) seed volume_walker "$f" 001; seed volume_walker "$f" 003 ;;
    esac
    n=$((n + 1))
done < <(find "$WORK" \( -name '*.tar' -o -name '*.zip' \) -size -1100k -print0)
echo "volume_walker: $n volumes"

# Volumes with what ferry never writes (directories, links, long names, PAX headers, a sparse
# file), made by GNU tar and Info-ZIP when they are installed.
special=$WORK/special
mkdir -p "$special/d"
printf 'payload' > "$special/file.bin"
printf 'x' > "$special/d/$(printf 'n%.0s' $(seq 120))"
ln -s file.bin "$special/link"
ln "$special/file.bin" "$special/hard"
if truncate -s 70000 "$special/sparse.bin" 2> /dev/null; then
    printf 'data' | dd of="$special/sparse.bin" bs=1 seek=40000 conv=notrunc 2> /dev/null
fi
if tar --version 2> /dev/null | grep -q 'GNU tar'; then
    tar --sparse --format=gnu -cf "$WORK/special-gnu.tar" -C "$special" .
    tar --format=pax -cf "$WORK/special-pax.tar" -C "$special" .
    tar --format=ustar -cf "$WORK/special-ustar.tar" -C "$special" file.bin link d 2> /dev/null || true
    for f in "$WORK"/special-*.tar; do seed volume_walker "$f" 000; done
fi
if command -v zip > /dev/null; then
    (cd "$special" && zip -q -0 -r -y "$WORK/special.zip" file.bin link d)
    seed volume_walker "$WORK/special.zip" 001
fi

# Metadata members, taken out of the tar volumes.
n=0
while IFS= read -r -d '' f; do
    x=$(mktemp -d "$WORK/x.XXXXXX")
    tar -xf "$f" -C "$x"
    while IFS= read -r -d '' m; do seed metadata_record "$m"; n=$((n + 1)); done < <(find "$x" -path '*metadata*' -type f -print0)
done < <(find "$WORK" -name 'vol-*.tar' -print0)
echo "metadata_record: $n metadata members"

# Update documents ferry generated: the metadata members' records, each a zstd frame (needs perl
# and zstd; skipped without them).
if command -v perl > /dev/null && command -v zstd > /dev/null; then
    n=0
    for m in "$CORPUS"/metadata_record/*; do
        d=$(mktemp -d "$WORK/docs.XXXXXX")
        perl -e 'open(my $f, "<:raw", $ARGV[0]) or die; my $i = 0;
            while (read($f, my $h, 8) == 8) {
                my ($c, $s) = unpack("VV", $h); last unless read($f, my $frame, $c) == $c;
                open(my $o, ">:raw", sprintf("%s/%05d.zst", $ARGV[1], $i++)) or die; print $o $frame; close($o);
            }' "$m" "$d"
        zstd -q -d --rm "$d"/*.zst 2> /dev/null || true
        for doc in "$d"/*; do [ -f "$doc" ] && case $doc in *.zst) ;; *) seed update_document "$doc"; n=$((n + 1)) ;; esac; done
    done
    echo "update_document: $n documents ferry generated"
fi

for t in "$CORPUS"/*; do echo "$(basename "$t"): $(find "$t" -type f | wc -l) seeds, $(du -sh "$t" | cut -f1)"; done
