#!/usr/bin/env bash
# What `/system/df` costs on a host with many containers that wrote to their layers, and
# whether a pass waits for it. On a private throwaway engine (needs root): N images, then
# C stopped containers that each wrote to their writable layer. Before and after the
# containers, timed --reps times each (medians):
#   - GET /system/df, everything: what `docker system df` asks (on API < 1.42 every
#     container's writable layer is sized; since 1.42 as well, when nothing narrows it);
#   - GET /system/df?type=image&type=build-cache: what stagesweep asks on API 1.42+ (20.10's
#     API 1.41 ignores `type`);
#   - `stagesweep plan` (history off): wall time, and the pass's own duration.
#
#   bench/df.sh [--engine docker20|docker28|docker28-containerd] [--containers 200]
#               [--images 50] [--write-kib 512] [--reps 5]
#
# Prints a table. See BENCHMARKS.md (§2, "/system/df on a busy host").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

engine=docker20
containers=200
images=50
write_kib=512
reps=5
while [ $# -gt 0 ]; do
    case $1 in
    --engine) engine=$2; shift 2 ;;
    --containers) containers=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --write-kib) write_kib=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root (it starts its own engine)"
busybox=$(command -v busybox) || die "no busybox (apt-get install busybox-static)"
need_tools
build_release

work=$(mktemp -d /tmp/stagesweep-dfbench.XXXXXX)
cleanup() {
    engine_stop "$engine" "$work/d" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
engine_start "$engine" "$work/d"
sock=${DOCKER_HOST#unix://}
api_version=$(curl -fsS --unix-socket "$sock" http://localhost/version | jq -r .ApiVersion)
echo "bench: private $engine (API $api_version) at $DOCKER_HOST" >&2

"$TOOL" load --count "$images" --label stage=builder --label stagesweep.bench=df 2>/dev/null
mkdir -p "$work/ctx"
cp "$busybox" "$work/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nLABEL stagesweep.bench=df\n' >"$work/ctx/Dockerfile"
DOCKER_BUILDKIT=0 "$DOCKER_CLI" build -q -t dfbench:1 "$work/ctx" >/dev/null

printf 'docker:\n  timeout: 5m\nhistory:\n  enabled: false\nlock_file: %s/pass.lock\nbuilds:\n  lock_file: %s/builds.lock\n  detect: false\npolicies:\n  - name: builders\n    match:\n      labels: [stage=builder]\n    min_age: 1h\n' \
    "$work" "$work" >"$work/config.yaml"

secs_of() { # command...: wall seconds
    local t0 t1
    t0=$(now_s)
    "$@" >/dev/null
    t1=$(now_s)
    awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.3f\n", a - b }'
}
df_all() { curl -fsS --max-time 600 --unix-socket "$sock" "http://localhost/v$api_version/system/df"; }
df_typed() { curl -fsS --max-time 600 --unix-socket "$sock" "http://localhost/v$api_version/system/df?type=image&type=build-cache"; }
plan() { "$STAGESWEEP" plan --config "$work/config.yaml" --output json >"$work/plan.json" 2>"$work/plan.log"; }

measure() { # label
    local all=() typed=() wall=() pass=()
    for _ in $(seq 1 "$reps"); do
        all+=("$(secs_of df_all)")
        typed+=("$(secs_of df_typed)")
        wall+=("$(secs_of plan)")
        pass+=("$(jq '.summary.duration_secs' "$work/plan.json")")
    done
    local n
    n=$(curl -fsS --unix-socket "$sock" 'http://localhost/containers/json?all=1' | jq length)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$n" \
        "$(printf '%s\n' "${all[@]}" | median)" "$(printf '%s\n' "${typed[@]}" | median)" \
        "$(printf '%s\n' "${wall[@]}" | median)" "$(printf '%s\n' "${pass[@]}" | median)"
}

echo "| $engine (API $api_version), $images images | containers | /system/df s | /system/df?type=image&type=build-cache s | stagesweep plan wall s | its pass s |"
echo '|---|---|---|---|---|---|'
measure "no containers"
echo "bench: creating $containers containers that write $write_kib KiB each" >&2
seq 1 "$containers" | xargs -P 4 -I{} "$DOCKER_CLI" run --name "dfbench-{}" --network none \
    --label stagesweep.bench=df dfbench:1 /bin/busybox dd if=/dev/zero of=/written bs=1k \
    count="$write_kib" >/dev/null 2>&1
measure "$containers stopped containers, $write_kib KiB written each"
