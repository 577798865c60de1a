#!/usr/bin/env bash
# Build cache: `docker builder prune -f` vs `stagesweep prune` on the same cache, on a
# private throwaway dockerd (needs root). Before every timed run the cache is rebuilt the
# same way (not timed): N BuildKit builds (Debian's docker CLI 20.10, DOCKER_BUILDKIT=1) of a
# Dockerfile with a builder stage, two RUN steps (KIB KiB of random data each) and a cache
# mount, each build different. Both tools then delete the same set: every record that is
# neither shared with an image nor in use, of every type but internal/frontend —
#   (a) docker builder prune -f
#   (b) stagesweep prune with one rule {unused_for: 0s} (the default types, shared excluded)
# Bytes freed are measured by GET /system/df before and after (all records).
#
#   bench/cache.sh [--engine docker20|docker28|docker28-containerd] [--builds 20] [--kib 512]
#                  [--reps 3] [--out DIR]
#
# --engine: Debian's dockerd 20.10 with its CLI (default), or Docker 28.5 on overlay2 or on the
# containerd image store with its own CLI and buildx (scripts/engines/, fetched when missing).
#
# Prints a table and writes DIR/results.tsv (default: a new temp dir). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

builds=20
kib=512
reps=3
out=""
engine=docker20
while [ $# -gt 0 ]; do
    case $1 in
    --engine) engine=$2; shift 2 ;;
    --builds) builds=$2; shift 2 ;;
    --kib) kib=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root (it starts its own engine)"
need_tools
command -v curl >/dev/null 2>&1 || die "curl is needed (apt-get install curl)"
command -v busybox >/dev/null 2>&1 || die "busybox is needed (apt-get install busybox-static)"
build_release

work=$(mktemp -d /tmp/stagesweep-cachebench.XXXXXX)
out=${out:-$work/out}
mkdir -p "$out" "$work/ctx"
cleanup() { engine_stop "$engine" "$work/d" >/dev/null 2>&1 || true; }
trap cleanup EXIT
engine_start "$engine" "$work/d"
sock=${DOCKER_HOST#unix://}
echo "bench: private $engine at $DOCKER_HOST" >&2
cp "$(command -v busybox)" "$work/ctx/busybox"
printf 'lock_file: %s\nhistory:\n  enabled: false\nbuild_cache:\n  - name: everything\n    unused_for: 0s\n' \
    "$work/stagesweep.lock" >"$work/stagesweep.yaml"
results=$out/results.tsv
printf 'tool\trep\trecords_before\trecords_deleted\tbytes_before\tbytes_freed\tsecs\n' >"$results"

# Docker 28.5 answers /system/df with a 404 for a moment after a BuildKit build: retry.
df_json() {
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        curl -fsS --unix-socket "$sock" http://localhost/v1.41/system/df 2>/dev/null && return 0
        sleep 1
    done
    curl -fsS --unix-socket "$sock" http://localhost/v1.41/system/df
}
# records and bytes of the build cache: "<count> <bytes>"
cache_stats() { df_json | jq -r '(.BuildCache // []) as $c | [($c | length), ($c | map(.Size) | add // 0)] | @tsv'; }

# N different builds; fills the cache (not timed).
fill() {
    local rep=$1 i
    for i in $(seq 1 "$builds"); do
        cat >"$work/ctx/Dockerfile" <<DOCKERFILE
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
FROM base AS builder
LABEL stage=builder
RUN --mount=type=cache,target=/cache,id=bench-$rep-$i echo $rep-$i > /cache/stamp && dd if=/dev/urandom of=/a.bin bs=1k count=$kib 2>/dev/null
RUN echo $rep-$i > /b && dd if=/dev/urandom of=/b.bin bs=1k count=$kib 2>/dev/null
FROM base
COPY --from=builder /a.bin /app.bin
DOCKERFILE
        DOCKER_BUILDKIT=1 "$DOCKER_CLI" build -q --network none -t "bench-$rep-$i:1" "$work/ctx" >/dev/null
    done
}

run_one() {
    local tool=$1 rep=$2
    fill "$rep"
    local before after t0 t1
    before=$(cache_stats)
    t0=$(now_s)
    case $tool in
    docker-builder-prune) "$DOCKER_CLI" builder prune -f >/dev/null ;;
    stagesweep-prune) "$STAGESWEEP" prune --config "$work/stagesweep.yaml" --no-wait --output json >"$work/prune.json" ;;
    esac
    t1=$(now_s)
    after=$(cache_stats)
    read -r n0 b0 <<<"$before"
    read -r n1 b1 <<<"$after"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$rep" "$n0" "$((n0 - n1))" "$b0" "$((b0 - b1))" \
        "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" >>"$results"
    echo "bench: $tool rep=$rep records $n0 -> $n1, bytes $b0 -> $b1" >&2
    # Start the next run from an empty cache (all records, shared ones too), not timed.
    "$DOCKER_CLI" builder prune -af >/dev/null
    "$DOCKER_CLI" image rm -f $("$DOCKER_CLI" images -q --filter reference='bench-*') >/dev/null 2>&1 || true
}

for rep in $(seq 1 "$reps"); do
    # Alternate which tool goes first.
    if [ $((rep % 2)) -eq 1 ]; then order="docker-builder-prune stagesweep-prune"; else order="stagesweep-prune docker-builder-prune"; fi
    for tool in $order; do run_one "$tool" "$rep"; done
done

{
    printf '| tool | records before | records deleted | bytes before | bytes freed | wall s (median of %s) |\n' "$reps"
    printf '|---|---|---|---|---|---|\n'
    for tool in docker-builder-prune stagesweep-prune; do
        awk -F'\t' -v t="$tool" '$1 == t' "$results" >"$work/rows"
        secs=$(cut -f7 "$work/rows" | median)
        printf '| `%s` | %s | %s | %s | %s | %.3f |\n' "$tool" \
            "$(cut -f3 "$work/rows" | median)" "$(cut -f4 "$work/rows" | median)" \
            "$(cut -f5 "$work/rows" | median)" "$(cut -f6 "$work/rows" | median)" "$secs"
    done
} | tee "$out/table.md"
echo "bench: results in $out" >&2
