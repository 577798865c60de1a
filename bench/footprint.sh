#!/usr/bin/env bash
# Idle footprint of the agent: binary size, and resident memory after some passes.
#
#   sudo bench/footprint.sh [--binary PATH]... [--passes 8] [--images 20] [--settle 10]
#
# For each binary (default: the packaged one, built by scripts/package.sh, and the image's
# static one from deploy/image/build.sh, both under target/footprint/): start a private
# dockerd, build --images small untagged images that the policy matches but keeps (younger
# than min_age), run `BINARY agent` on "@every 2s" until --passes passes are done, scrape
# /metrics once, wait --settle seconds, then read VmRSS and VmHWM from /proc/PID/status.
# Prints a markdown table. Needs root (dockerd), jq and curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

binaries=()
passes=8
images=20
settle=10
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binaries+=("$2"); shift 2 ;;
    --passes) passes=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (starts a private dockerd)"
need_tools
command -v curl >/dev/null 2>&1 || die "curl not found (apt-get install curl)"

if [ "${#binaries[@]}" -eq 0 ]; then
    out=target/footprint
    CARGO_TARGET_DIR=$PWD/$out/deb scripts/package.sh "$out/deb/debian" >&2
    sh deploy/image/build.sh "$PWD/$out/static" >&2 </dev/null ||
        die "static build failed"
    binaries=("$out/deb/release/stagesweep" "$out/static/stagesweep")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/stagesweep-footprint.XXXXXX")
agent=""
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
    scripts/dockerd.sh stop "$work/dockerd" || true
    rm -rf "$work"
}
trap cleanup EXIT
DOCKER_HOST=$(scripts/dockerd.sh start "$work/dockerd")
export DOCKER_HOST
run_id=footprint-$$
# Small images FROM scratch (classic builder, no pull), each with its own layer.
mkdir -p "$work/ctx"
for i in $(seq 1 "$images"); do
    head -c 4096 /dev/urandom >"$work/ctx/blob"
    printf 'FROM scratch\nLABEL stagesweep.bench=%s n=%s\nCOPY blob /blob\n' "$run_id" "$i" >"$work/ctx/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q --network none "$work/ctx" >/dev/null
done

echo "| binary | size (bytes) | linking | passes | VmRSS MiB | RssFile MiB | RssAnon MiB | VmHWM MiB |"
echo "|---|---|---|---|---|---|---|---|"
for bin in "${binaries[@]}"; do
    port=$((20000 + RANDOM % 20000))
    cat >"$work/agent.yaml" <<EOF
policies:
  - name: footprint
    match:
      labels: [stagesweep.bench=$run_id]
    min_age: 1h
schedule: "@every 2s"
run_on_start: true
lock_file: $work/lock
metrics:
  listen: 127.0.0.1:$port
history:
  path: $work/state/history.json
EOF
    "$bin" agent --config "$work/agent.yaml" 2>"$work/agent.log" &
    agent=$!
    deadline=$((SECONDS + 120))
    done_passes=0
    while [ "$done_passes" -lt "$passes" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "no $passes passes within 120s; see $work/agent.log"
        sleep 1
        done_passes=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null |
            awk '/^stagesweep_passes_total/ { n += $2 } END { print n + 0 }')
    done
    curl -fsS "http://127.0.0.1:$port/metrics" >/dev/null
    sleep "$settle"
    rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$agent/status")
    hwm=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$agent/status")
    file=$(awk '/^RssFile/ { printf "%.1f", $2 / 1024 }' "/proc/$agent/status")
    anon=$(awk '/^RssAnon/ { printf "%.1f", $2 / 1024 }' "/proc/$agent/status")
    linking=$(if file -L "$bin" | grep -q "dynamically linked"; then echo dynamic; else echo static; fi)
    kill "$agent"
    wait "$agent" 2>/dev/null || true
    agent=""
    echo "| $bin | $(stat -L -c %s "$bin") | $linking | $done_passes | $rss | $file | $anon | $hwm |"
done
