#!/usr/bin/env bash
# The agent's memory with a history: a fake Engine API (benches/engine_tool serve) holds N
# synthetic images and an events stream that stays open; the agent runs with a history file
# of N records (one per image, written by engine_tool), the ten policies of
# benches/support/policies.yaml and metrics on. Two runs per size:
#   idle:    no pass (schedule an hour away): the history loaded and reconciled with the
#            engine's images, what the agent holds between passes at best;
#   passing: a pass every 5 s for --secs.
# Samples /proc/PID/status every second: VmRSS (everything resident), RssAnon (the process's
# own memory: heap, stacks) and RssFile (pages of the executable and libraries, shared with
# the page cache); then the peak (VmHWM). No docker daemon and no root needed.
#
#   bench/history.sh [--sizes 10000] [--secs 30] [--out DIR] [--bin PATH] [--glibc-defaults] [--history-v1]
#
# The agent runs with the environment the systemd unit and the image give it (GLIBC_TUNABLES,
# read from systemd/stagesweep.service); --glibc-defaults runs it without.
# --bin measures another build of stagesweep (e.g. the static one of deploy/image/build.sh).
# --history-v1 writes the history file in the previous layout (columnar JSON), which builds
# from before the binary layout read too: use it to compare such a build (--bin) with this one.
# KEEP=1 keeps the work directory (logs, config, history) for a look afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

sizes=10000
secs=30
out=""
bin=""
history_v1=""
tunables=$(sed -n 's/^Environment=GLIBC_TUNABLES=//p' systemd/stagesweep.service)
while [ $# -gt 0 ]; do
    case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --glibc-defaults) tunables=""; shift ;;
    --history-v1) history_v1=--history-v1; shift ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
need_tools
build_release
STAGESWEEP=${bin:-$STAGESWEEP}
work=$(mktemp -d /tmp/stagesweep-histbench.XXXXXX)
out=${out:-$work/out}
mkdir -p "$out"
server="" agent=""
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null || true
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

printf '| N images (= history records) | history file MiB | idle: VmRSS / RssAnon MiB | passing: VmRSS / RssAnon MiB (medians) | RssFile MiB | peak VmHWM MiB | passes |\n' >"$out/table.md"
printf '|---|---|---|---|---|---|---|\n' >>"$out/table.md"

# status_kib PID FIELD: one field of /proc/PID/status, in KiB.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# run_agent N SCHEDULE RUN_ON_START SECS: start the agent, sample it every second; sets
# rss_med, anon_med, file_kib, hwm, passes.
run_agent() {
    local n=$1 schedule=$2 on_start=$3 secs=$4
    config=$work/agent-$n.yaml
    {
        cat benches/support/policies.yaml
        printf 'schedule: "%s"\nrun_on_start: %s\nlock_file: %s/run/lock\n' "$schedule" "$on_start" "$work"
        printf 'builds:\n  lock_file: %s/run/builds.lock\n' "$work"
        printf 'metrics:\n  listen: 127.0.0.1:0\nhistory:\n  path: %s\n' "$history"
    } >"$config"
    GLIBC_TUNABLES=$tunables DOCKER_HOST=unix://$sock RUST_LOG=stagesweep=info "$STAGESWEEP" agent --config "$config" 2>"$work/agent.log" &
    agent=$!
    local rss=() anon=()
    for _ in $(seq 1 "$secs"); do
        sleep 1
        kill -0 "$agent" 2>/dev/null || die "the agent exited; see $work/agent.log"
        rss+=("$(status_kib "$agent" VmRSS)")
        anon+=("$(status_kib "$agent" RssAnon)")
    done
    hwm=$(status_kib "$agent" VmHWM)
    file_kib=$(status_kib "$agent" RssFile)
    kill -TERM "$agent"
    wait "$agent" || die "the agent did not exit cleanly; see $work/agent.log"
    agent=""
    grep -q "following docker events" "$work/agent.log" || die "the agent never followed events; see $work/agent.log"
    passes=$(grep -c "pass finished" "$work/agent.log" || true)
    rss_med=$(printf '%s\n' "${rss[@]}" | median)
    anon_med=$(printf '%s\n' "${anon[@]}" | median)
}

IFS=, read -r -a size_list <<<"$sizes"
for n in "${size_list[@]}"; do
    mkdir -p "$work/state-$n" "$work/run"
    history=$work/state-$n/history.json
    fake_engine_start "$n" "$work" $((secs + 180)) --history "$history" ${history_v1:+"$history_v1"}
    size=$(stat -c %s "$history")

    run_agent "$n" "@every 1h" false 10
    [ "$passes" -eq 0 ] || die "the idle agent ran a pass; see $work/agent.log"
    idle="$(awk -v r="$rss_med" -v a="$anon_med" 'BEGIN { printf "%.1f / %.1f", r / 1024, a / 1024 }')"
    idle_hwm=$hwm

    run_agent "$n" "@every 5s" true "$secs"
    [ "$passes" -ge 1 ] || die "no pass finished in $secs s; see $work/agent.log"
    grep -q "deferring deletions" "$work/agent.log" && die "a pass waited for a build; see $work/agent.log"
    # The header line of the file (version 2), or the whole file (version 1: a --bin of before).
    records=$(head -n 1 "$history" | jq 'if (.images | type) == "object" then .images.first_seen | length else .images end')
    [ "$records" -ge "$n" ] || die "history has $records records, expected $n"
    echo "bench: n=$n idle=$idle (hwm ${idle_hwm}KiB) passing rss=${rss_med}KiB anon=${anon_med}KiB file=${file_kib}KiB hwm=${hwm}KiB passes=$passes" >&2
    awk -v n="$n" -v s="$size" -v i="$idle" -v m="$rss_med" -v a="$anon_med" -v f="$file_kib" -v h="$hwm" -v p="$passes" \
        'BEGIN { printf "| %d | %.1f | %s | %.1f / %.1f | %.1f | %.1f | %d |\n", n, s / 1048576, i, m / 1024, a / 1024, f / 1024, h / 1024, p }' >>"$out/table.md"
    fake_engine_stop
done
cat "$out/table.md"
