#!/usr/bin/env bash
# Connections and wall time per pass against the fake Engine API (benches/engine_tool serve,
# a unix socket; it answers inspect and DELETE for its images):
#   - `stagesweep plan --output json` at --plan-images (default 100 000) images,
#   - `stagesweep prune --no-wait` at --prune-images (default 20 000) images (the fake's
#     DELETE changes nothing, so every run deletes the same set),
# each counted once under `strace -f -c -e trace=connect` and timed --reps times (median),
# for this checkout's release build and, with --baseline BIN, for another build (e.g. the
# commit before the connection pool) in the same run. The ten policies of
# benches/support/policies.yaml, history off, lock files in a temp dir. No root needed
# (strace must be installed). Keep --reps small on a shared machine.
#
#   bench/connections.sh [--plan-images 100000] [--prune-images 20000] [--reps 3]
#                        [--baseline BIN]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

plan_n=100000
prune_n=20000
reps=3
baseline=""
while [ $# -gt 0 ]; do
    case $1 in
    --plan-images) plan_n=$2; shift 2 ;;
    --prune-images) prune_n=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
command -v strace >/dev/null 2>&1 || die "strace is not installed (apt-get install strace)"
need_tools
build_release
work=$(mktemp -d /tmp/stagesweep-connbench.XXXXXX)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The bench policies, with no history and private lock files.
config=$work/config.yaml
{
    cat benches/support/policies.yaml
    printf 'history:\n  enabled: false\nlock_file: %s/pass.lock\nbuilds:\n  lock_file: %s/builds.lock\n  detect: false\n' \
        "$work" "$work"
} >"$config"


run() { # bin what
    case $2 in
    plan) DOCKER_HOST=unix://$sock "$1" plan --config "$config" --output json >"$work/out.json" 2>"$work/run.log" ;;
    prune) DOCKER_HOST=unix://$sock "$1" prune --config "$config" --no-wait --output json >"$work/out.json" 2>"$work/run.log" ;;
    esac || die "$2 with $1 failed; see $work/run.log"
}

measure() { # label bin what n
    local connects walls=() t0 t1 deletions
    DOCKER_HOST=unix://$sock strace -f -c -e trace=connect -o "$work/strace.txt" \
        "$2" "$3" --config "$config" $([ "$3" = prune ] && echo --no-wait) --output json \
        >"$work/out.json" 2>"$work/run.log" || die "$3 with $2 under strace failed; see $work/run.log"
    connects=$(awk '$NF == "connect" { print $4 }' "$work/strace.txt")
    for _ in $(seq 1 "$reps"); do
        t0=$(now_s)
        run "$2" "$3"
        t1=$(now_s)
        walls+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')")
    done
    if [ "$3" = plan ]; then
        deletions=$(jq '[.images[] | select(.action == "delete")] | length' "$work/out.json")
    else
        deletions=$(jq '.summary.deleted' "$work/out.json")
    fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$3" "$4" "$1" "${connects:-0}" \
        "$(printf '%s\n' "${walls[@]}" | median)" "$deletions"
}

echo '| command | images | build | connect() calls | wall s (median) | deletions |'
echo '|---|---|---|---|---|---|'
for what in plan prune; do
    n=$plan_n
    [ "$what" = prune ] && n=$prune_n
    fake_engine_start "$n" "$work" 900
    [ -n "$baseline" ] && measure baseline "$baseline" "$what" "$n"
    measure "this checkout" "$STAGESWEEP" "$what" "$n"
    fake_engine_stop
done
