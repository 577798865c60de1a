#!/usr/bin/env bash
# The agent's memory with a history: a fake Engine API (benches/engine_tool serve) holds N
# synthetic images and an events stream that stays open; the agent runs with a history file
# of N records (one per image, written by engine_tool), the ten policies of
# benches/support/policies.yaml, metrics on, and a pass every 5 s. Samples the agent's RSS
# (/proc/PID/status VmRSS) every second for --secs, then reads its peak (VmHWM).
# No docker daemon and no root needed.
#
#   bench/history.sh [--sizes 10000] [--secs 30] [--out DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

sizes=10000
secs=30
out=""
while [ $# -gt 0 ]; do
    case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
need_tools
build_release
work=$(mktemp -d /tmp/stagesweep-histbench.XXXXXX)
out=${out:-$work/out}
mkdir -p "$out"
server="" agent=""
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null || true
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

printf '| N images (= history records) | history file MiB | RSS MiB (median of samples) | peak RSS MiB (VmHWM) | passes |\n' >"$out/table.md"
printf '|---|---|---|---|---|\n' >>"$out/table.md"
IFS=, read -r -a size_list <<<"$sizes"
for n in "${size_list[@]}"; do
    sock=$work/fake-$n.sock
    mkdir -p "$work/state-$n"
    history=$work/state-$n/history.json
    "$TOOL" serve --socket "$sock" --images "$n" --history "$history" --max-secs $((secs + 120)) 2>"$work/serve.log" &
    server=$!
    for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || die "the fake engine did not start; see $work/serve.log"
    config=$work/agent-$n.yaml
    {
        cat benches/support/policies.yaml
        printf 'schedule: "@every 5s"\nrun_on_start: true\nlock_file: %s/run/lock\n' "$work"
        printf 'metrics:\n  listen: 127.0.0.1:0\nhistory:\n  path: %s\n' "$history"
    } >"$config"
    DOCKER_HOST=unix://$sock RUST_LOG=stagesweep=info "$STAGESWEEP" agent --config "$config" 2>"$work/agent.log" &
    agent=$!
    samples=()
    for _ in $(seq 1 "$secs"); do
        sleep 1
        kill -0 "$agent" 2>/dev/null || die "the agent exited; see $work/agent.log"
        samples+=("$(awk '/^VmRSS:/ { print $2 }' "/proc/$agent/status")")
    done
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$agent/status")
    kill -TERM "$agent"
    wait "$agent" || die "the agent did not exit cleanly; see $work/agent.log"
    agent=""
    grep -q "following docker events" "$work/agent.log" || die "the agent never followed events; see $work/agent.log"
    passes=$(grep -c "pass finished" "$work/agent.log" || true)
    records=$(jq '.images.first_seen | length' "$history")
    [ "$records" -ge "$n" ] || die "history has $records records, expected $n"
    size=$(stat -c %s "$history")
    med=$(printf '%s\n' "${samples[@]}" | median)
    echo "bench: n=$n rss_median=${med}KiB hwm=${hwm}KiB passes=$passes" >&2
    awk -v n="$n" -v s="$size" -v m="$med" -v h="$hwm" -v p="$passes" \
        'BEGIN { printf "| %d | %.1f | %.1f | %.1f | %d |\n", n, s / 1048576, m / 1024, h / 1024, p }' >>"$out/table.md"
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
done
cat "$out/table.md"
