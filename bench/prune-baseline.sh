#!/usr/bin/env bash
# `stagesweep prune` at scale against another build of stagesweep, on the same fake Engine
# API (benches/engine_tool serve --deleting: N synthetic images; a DELETE removes the image,
# as a daemon's does, and every run starts with a fresh fake, so each deletes the same set):
# one policy, the classic
# recipe's (`stage=builder`, older than the default min_age of 1h), history off, lock files
# in a temp dir. (The ten policies of benches/support/policies.yaml plan differently in
# builds from before wave 2, whose keep_last and parent rules were looser: 19 444 deletions
# at 20k against 6 379 now; this one plans the same set in both.) The two builds run
# alternately, --reps times each (medians); the run fails when they delete different
# numbers of images. No root needed.
#
#   bench/prune-baseline.sh --baseline BIN [--images 20000] [--reps 3]
#
# BIN: e.g. the release build of an older commit (`git archive COMMIT | tar -x -C DIR`,
# `cargo build --release --locked` there). Its configuration is the policies and a lock file
# only (a build from before the history and the build lock knows no other keys). See
# BENCHMARKS.md (§1, "Against the build before wave 2").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

images=20000
reps=3
baseline=""
while [ $# -gt 0 ]; do
    case $1 in
    --baseline) baseline=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
[ -n "$baseline" ] && [ -x "$baseline" ] || die "--baseline BIN: an executable stagesweep build"
need_tools
build_release
work=$(mktemp -d /tmp/stagesweep-prunebench.XXXXXX)
server=""
cleanup() {
    fake_engine_stop
    rm -rf "$work"
}
trap cleanup EXIT

policy='policies:\n  - name: builder-stages\n    match:\n      labels: [stage=builder]\n'
{
    printf '%b' "$policy"
    printf 'lock_file: %s/old.lock\n' "$work"
} >"$work/old.yaml"
{
    printf '%b' "$policy"
    printf 'history:\n  enabled: false\nlock_file: %s/new.lock\nbuilds:\n  lock_file: %s/builds.lock\n  detect: false\n' \
        "$work" "$work"
} >"$work/new.yaml"

run() { # bin config -> "secs deletions"
    local t0 t1
    t0=$(now_s)
    DOCKER_HOST=unix://$sock "$1" prune --config "$2" --no-wait --output json \
        >"$work/out.json" 2>"$work/run.log" || die "prune with $1 failed; see $work/run.log"
    t1=$(now_s)
    printf '%s %s\n' "$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')" \
        "$(jq '.summary.deleted' "$work/out.json")"
}

old=() new=() old_n="" new_n=""
for _ in $(seq 1 "$reps"); do
    fake_engine_start "$images" "$work" 1800 --deleting
    r=$(run "$baseline" "$work/old.yaml")
    fake_engine_stop
    old+=("${r% *}") old_n=${r#* }
    fake_engine_start "$images" "$work" 1800 --deleting
    r=$(run "$STAGESWEEP" "$work/new.yaml")
    fake_engine_stop
    new+=("${r% *}") new_n=${r#* }
done
[ "$old_n" = "$new_n" ] || die "the builds deleted different numbers of images: $old_n (baseline) and $new_n"
a=$(printf '%s\n' "${old[@]}" | median)
b=$(printf '%s\n' "${new[@]}" | median)
echo "| images | deletions | baseline s (median of $reps) | this checkout s | ratio |"
echo '|---|---|---|---|---|'
printf '| %s | %s | %s | %s | %.2f |\n' "$images" "$new_n" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { print b / a }')"
echo "(runs: baseline ${old[*]}; this checkout ${new[*]}; load: $(cut -d' ' -f1-3 /proc/loadavg))"
