#!/usr/bin/env bash
# Soak: `stagesweep agent` on `@every 1s` against a private throwaway dockerd (needs root)
# while images and containers churn; samples the agent's RSS, open file descriptors, CPU time
# and pass count every 10 s and prints them, with CPU per pass early and late.
#
#   bench/soak.sh [--duration SECS] [--out DIR] [--assert] [--debug]
#
# --duration  how long the agent runs (default 1800 = 30 min; CI runs 120)
# --assert    exit 1 when, after the first quarter (warm-up), fds grow by more than 4 or RSS by
#             more than max(4 MiB, 20 %), when a pass fails, or when fewer passes ran than
#             a third of the seconds
# --debug     use debug builds (CI: already built by the tests) instead of release ones
# Writes DIR/samples.tsv (default: a new temp dir). Figures: BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

duration=1800
out=""
check=false
profile=release
while [ $# -gt 0 ]; do
    case $1 in
    --duration) duration=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --assert) check=true; shift ;;
    --debug) profile=debug; shift ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root (it starts its own dockerd)"
need_tools
if [ "$profile" = release ]; then
    build_release
else
    echo "bench: cargo build (debug: stagesweep, engine_tool)" >&2
    cargo build --locked --bin stagesweep >&2
    TOOL=$(cargo build --locked --bench engine_tool --message-format=json 2>/dev/null |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "engine_tool") | .executable' |
        tail -n 1)
    STAGESWEEP=$PWD/target/debug/stagesweep
    [ -x "$TOOL" ] && [ -x "$STAGESWEEP" ] || die "debug builds not found"
fi
DOCKER_CLI=/usr/bin/docker
[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker) || die "no docker CLI (apt-get install docker.io)"

work=$(mktemp -d /tmp/stagesweep-soak.XXXXXX)
out=${out:-$work/out}
mkdir -p "$out"
agent=""
churn=""
cleanup() {
    [ -n "$churn" ] && kill "$churn" 2>/dev/null || true
    [ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
    scripts/dockerd.sh stop "$work/d" >/dev/null 2>&1 || true
}
trap cleanup EXIT
export DOCKER_HOST
DOCKER_HOST=$(scripts/dockerd.sh start "$work/d")
run=soak-$$
port=$(( 20000 + RANDOM % 20000 ))
cat >"$work/agent.yaml" <<EOF
schedule: "@every 1s"
lock_file: $work/lock
# No history: the churn loads old images that the next pass must delete (with a history
# they would be first seen now, younger than min_age); bench/history.sh measures the history.
history:
  enabled: false
metrics:
  listen: 127.0.0.1:$port
policies:
  - name: soak
    match:
      labels: ["stagesweep.soak=$run", "stage=builder"]
    min_age: 1h
EOF
# A protected base for containers, and a first batch of candidates.
"$TOOL" load --count 1 --label "stagesweep.soak=$run" --label stage=base --age-hours 48 >/dev/null
base=$("$DOCKER_CLI" images -q --filter "label=stage=base" | head -n 1)
"$STAGESWEEP" agent --config "$work/agent.yaml" 2>"$work/agent.log" &
agent=$!

# Churn, once a second: 5 old builder images (the next pass deletes them), a container
# created from one of them (kept while it exists) and removed a few seconds later, and a
# container from the base image created and removed.
(
    i=0
    while sleep 1; do
        "$TOOL" load --count 5 --batch 5 --jobs 1 --label "stagesweep.soak=$run" --label stage=builder >/dev/null 2>&1 || true
        young=$("$DOCKER_CLI" images -q --filter "label=stagesweep.soak=$run" --filter label=stage=builder | head -n 1)
        [ -n "$young" ] && "$DOCKER_CLI" create --network none --label "stagesweep.soak=$run" "$young" /x >/dev/null 2>&1 || true
        c=$("$DOCKER_CLI" create --network none --label "stagesweep.soak=$run" "$base" /x 2>/dev/null) || true
        [ -n "$c" ] && "$DOCKER_CLI" rm "$c" >/dev/null 2>&1 || true
        i=$((i + 1))
        if [ $((i % 5)) -eq 0 ]; then
            "$DOCKER_CLI" ps -aq --filter "label=stagesweep.soak=$run" | xargs -r "$DOCKER_CLI" rm >/dev/null 2>&1 || true
        fi
    done
) &
churn=$!

metric_sum() { # sum of the samples of one metric family
    curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" 2>/dev/null |
        awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'
}
sample() { # elapsed rss_kib fds cpu_ticks passes failures
    local stat
    stat=$(cut -d' ' -f14,15 "/proc/$agent/stat" 2>/dev/null) || die "the agent died; log: $work/agent.log"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" \
        "$(awk '/^VmRSS:/ { print $2 }' "/proc/$agent/status")" \
        "$(ls "/proc/$agent/fd" | wc -l)" \
        "$(echo "$stat" | awk '{ print $1 + $2 }')" \
        "$(metric_sum 'stagesweep_passes_total{')" \
        "$(metric_sum 'stagesweep_passes_total{result="failure"}')"
}

samples=$out/samples.tsv
printf 'secs\trss_kib\tfds\tcpu_ticks\tpasses\tfailures\n' >"$samples"
started=$SECONDS
sleep 5
while [ $((SECONDS - started)) -lt "$duration" ]; do
    sample $((SECONDS - started)) | tee -a "$samples" >&2
    sleep 10
done
sample $((SECONDS - started)) >>"$samples"

# Summary: warm-up (first quarter) excluded; early = second quarter, late = last quarter.
hz=$(getconf CLK_TCK)
summary=$(awk -F'\t' -v hz="$hz" -v d="$duration" '
    NR == 1 { next }
    { t[NR] = $1; rss[NR] = $2; fd[NR] = $3; cpu[NR] = $4; pass[NR] = $5; fail[NR] = $6; n = NR }
    END {
        for (i = 2; i <= n; i++) if (t[i] >= d / 4) { w = i; break }
        for (i = 2; i <= n; i++) if (t[i] >= d / 2) { m = i; break }
        for (i = 2; i <= n; i++) if (t[i] >= 3 * d / 4) { l = i; break }
        if (!w) w = 2; if (!m) m = w; if (!l) l = m
        early = (pass[m] > pass[w]) ? 1000 * (cpu[m] - cpu[w]) / hz / (pass[m] - pass[w]) : 0
        late = (pass[n] > pass[l]) ? 1000 * (cpu[n] - cpu[l]) / hz / (pass[n] - pass[l]) : 0
        rmin = rss[w]; rmax = rss[w]; fmin = fd[w]; fmax = fd[w]
        for (i = w; i <= n; i++) {
            if (rss[i] < rmin) rmin = rss[i]; if (rss[i] > rmax) rmax = rss[i]
            if (fd[i] < fmin) fmin = fd[i]; if (fd[i] > fmax) fmax = fd[i]
        }
        printf "%d %d %d %d %d %d %.2f %.2f %d %d %d %d\n", t[n], pass[n], fail[n], rss[w], rss[n], rmax, early, late, fd[w], fd[n], fmax, rmin
    }' "$samples")
read -r secs passes failures rss_w rss_n rss_max cpu_early cpu_late fd_w fd_n fd_max rss_min <<<"$summary"
deleted=$(metric_sum 'stagesweep_images_deleted_total{')
cat <<EOF | tee "$out/summary.md"
| soak | value |
|---|---|
| duration | ${secs} s, $passes passes ($failures failed) on @every 1s, $deleted images deleted |
| RSS after warm-up → end (max) | $((rss_w / 1024)).$(( (rss_w % 1024) * 10 / 1024 )) MiB → $((rss_n / 1024)).$(( (rss_n % 1024) * 10 / 1024 )) MiB ($((rss_max / 1024)).$(( (rss_max % 1024) * 10 / 1024 )) MiB) |
| open fds after warm-up → end (max) | $fd_w → $fd_n ($fd_max) |
| CPU per pass, second quarter → last quarter | $cpu_early ms → $cpu_late ms |
EOF
echo "bench: samples in $samples" >&2
if $check; then
    fail=""
    [ "$failures" -eq 0 ] || fail="$fail $failures passes failed;"
    [ "$passes" -ge $((secs / 3)) ] || fail="$fail only $passes passes in ${secs}s;"
    [ "$fd_n" -le $((fd_w + 4)) ] || fail="$fail fds grew $fd_w -> $fd_n;"
    allowed=$(( rss_w / 5 > 4096 ? rss_w / 5 : 4096 ))
    [ "$rss_n" -le $((rss_w + allowed)) ] || fail="$fail RSS grew $rss_w -> $rss_n KiB;"
    if [ -n "$fail" ]; then
        echo "soak: FAILED:$fail (agent log: $work/agent.log)" >&2
        tail -n 20 "$work/agent.log" >&2
        exit 1
    fi
    echo "soak: ok (fds and RSS flat, no failed pass)" >&2
fi
