#!/usr/bin/env bash
# `stagesweep plan` at scale, end to end: a fake Engine API (benches/engine_tool serve) holds N
# synthetic images (classic build chains, tags, labels, a few containers); stagesweep lists
# them and plans with the ten policies of benches/support/policies.yaml. Measures wall time
# (connect + list + plan + JSON output) and peak RSS of the `stagesweep plan --output json`
# process. No docker daemon and no root needed.
#
#   bench/plan.sh [--sizes 10000,100000] [--reps 3] [--out DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

sizes=10000,100000
reps=3
out=""
while [ $# -gt 0 ]; do
    case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
need_tools
build_release
work=$(mktemp -d /tmp/stagesweep-planbench.XXXXXX)
out=${out:-$work/out}
mkdir -p "$out"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

printf '| N images | wall s (median) | in-process pass s | peak RSS MiB | deletions planned |\n' >"$out/table.md"
printf '|---|---|---|---|---|\n' >>"$out/table.md"
IFS=, read -r -a size_list <<<"$sizes"
for n in "${size_list[@]}"; do
    fake_engine_start "$n" "$work" 600
    walls=() pass=() rss=()
    for rep in $(seq 1 "$reps"); do
        t0=$(now_s)
        DOCKER_HOST=unix://$sock /usr/bin/time -v -o "$work/time.txt" "$STAGESWEEP" plan \
            --config benches/support/policies.yaml --output json >"$work/plan.json" 2>"$work/plan.log" ||
            die "stagesweep plan failed; see $work/plan.log"
        t1=$(now_s)
        got=$(jq '.summary.images' "$work/plan.json")
        [ "$got" -eq "$n" ] || die "plan saw $got images, expected $n"
        walls+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')")
        pass+=("$(jq '.summary.duration_secs' "$work/plan.json")")
        rss+=("$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")")
        echo "bench: n=$n rep=$rep wall=${walls[-1]}s pass=${pass[-1]}s rss=${rss[-1]}KiB" >&2
    done
    deletions=$(jq '[.images[] | select(.action == "delete")] | length' "$work/plan.json")
    w=$(printf '%s\n' "${walls[@]}" | median)
    p=$(printf '%s\n' "${pass[@]}" | median)
    r=$(printf '%s\n' "${rss[@]}" | median)
    awk -v n="$n" -v w="$w" -v p="$p" -v r="$r" -v d="$deletions" \
        'BEGIN { printf "| %d | %.3f | %.3f | %.1f | %d |\n", n, w, p, r / 1024, d }' >>"$out/table.md"
    fake_engine_stop
done
cat "$out/table.md"
