#!/usr/bin/env bash
# `stagesweep du` at scale, end to end: the fake Engine API of bench/plan.sh
# (benches/engine_tool serve: N synthetic images, classic build chains, tags, labels, a few
# containers) and the ten policies of benches/support/policies.yaml; `du --by <label>
# --output json`, grouped by a label the synthetic images carry. Measures wall time (connect
# + /info + listings + /system/df + plan + grouping + JSON) and peak RSS. No docker daemon
# and no root needed.
#
#   bench/du.sh [--sizes 10000,100000] [--reps 3] [--by com.example.project] [--out DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

sizes=10000,100000
reps=3
by=policy
out=""
while [ $# -gt 0 ]; do
    case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --by) by=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
need_tools
build_release
work=$(mktemp -d /tmp/stagesweep-dubench.XXXXXX)
out=${out:-$work/out}
mkdir -p "$out"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

printf '| N images | --by | wall s (median) | peak RSS MiB | groups |\n' >"$out/table.md"
printf '|---|---|---|---|---|\n' >>"$out/table.md"
IFS=, read -r -a size_list <<<"$sizes"
for n in "${size_list[@]}"; do
    fake_engine_start "$n" "$work" 600
    walls=() rss=()
    for rep in $(seq 1 "$reps"); do
        t0=$(now_s)
        DOCKER_HOST=unix://$sock STAGESWEEP_CONFIG=benches/support/policies.yaml \
            /usr/bin/time -v -o "$work/time.txt" "$STAGESWEEP" du --by "$by" --output json \
            >"$work/du.json" 2>"$work/du.log" || die "stagesweep du failed; see $work/du.log"
        t1=$(now_s)
        got=$(jq '[.groups[] | select(.kind == "images" or .kind == "other") | .count] | add' "$work/du.json")
        [ "$got" -eq "$n" ] || die "du counted $got images, expected $n"
        walls+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')")
        rss+=("$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")")
        echo "bench: n=$n rep=$rep wall=${walls[-1]}s rss=${rss[-1]}KiB" >&2
    done
    groups=$(jq '.groups | length' "$work/du.json")
    w=$(printf '%s\n' "${walls[@]}" | median)
    r=$(printf '%s\n' "${rss[@]}" | median)
    awk -v n="$n" -v by="$by" -v w="$w" -v r="$r" -v g="$groups" \
        'BEGIN { printf "| %d | %s | %.3f | %.1f | %d |\n", n, by, w, r / 1024, g }' >>"$out/table.md"
    fake_engine_stop
done
cat "$out/table.md"
