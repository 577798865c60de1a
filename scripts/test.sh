#!/usr/bin/env bash
# The test command: install the Debian packages the tests need when missing
# (scripts/install-deps.sh, the list in scripts/debian-packages.txt), fetch the newer engines
# (scripts/engines/fetch.sh), start PRIVATE throwaway engines, run the whole test suite
# against them, and always stop them again.
#
#   scripts/test.sh              the whole suite, built once, run in parallel lanes (below)
#   scripts/test.sh ARGS...      cargo test --locked --features host-tests ARGS against each
#                                engine of STAGESWEEP_TEST_ENGINES (default docker20), one
#                                after the other (e.g. --test engine -- engine_docker::)
#
# The test binaries are one per harness (CONTRIBUTING.md, "Tests"): pure, faults and docs run
# with a plain `cargo test` too; engine, agent, package and the host-dependent modules of
# faults and docs need the `host-tests` feature, which this script turns on.
#
# The engine matrix (docs/engines.md, "Support matrix", names each; tests/docs checks that):
#   docker20             Debian's dockerd 20.10, overlay2       scripts/dockerd.sh
#   docker28             Docker 28.5, overlay2                  scripts/engines/docker28.sh
#   docker28-containerd  Docker 28.5, containerd image store    scripts/engines/docker28.sh
#   podman4              Debian's Podman 4.3                    scripts/podman.sh
#   podman5              Podman 5.8                             scripts/engines/podman5.sh
# each started privately (own data root, exec root, sockets, no networking) in a mktemp dir.
#
# The whole suite is compiled once (`cargo test --no-run`), then its binaries run in lanes,
# side by side, each with its own log (printed whole when the lanes end):
#   docker20   the unit tests, pure, docs, faults, agent and engine, one after the other,
#              against the private dockerd 20.10;
#   package    the .deb and the sidecar image (release builds, mostly CPU) on that dockerd;
#   one lane per other engine of the matrix: the engine binary against it, with
#              STAGESWEEP_TEST_ENGINE=<its name> (and, for 28.5, the 28.5 CLI with buildx:
#              its DIR/env). A test that cannot run on an engine says why on a line
#              `SKIPPED <test> on <engine>: <why>` (tests/support/matrix.rs), counted below.
# Lanes never share images: every test labels what it makes with its own unique label.
# STAGESWEEP_TEST_ENGINES (a space-separated subset of the matrix) chooses the engine lanes
# besides docker20 in a whole run (default: all).
# The closing `tests: N passed, N failed, N skipped` line counts every lane.
#
# An inherited DOCKER_HOST is NOT used by default (the suite then cannot touch a daemon you
# care about). Set STAGESWEEP_REUSE_DOCKER_HOST=1 to run against $DOCKER_HOST instead of the
# private dockerd 20.10 when it answers /_ping; tests only touch images and containers
# carrying their own unique label. Needs root to install packages and to start the engines.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The engine matrix, in lane order (tests/support/matrix.rs `MATRIX` has the same names).
matrix=(docker20 docker28 docker28-containerd podman4 podman5)

"$root/scripts/install-deps.sh"
# Docker 28.5 for the tests that start their own (tests/agent/disk_containerd.rs: the
# containerd image store); idempotent, well under a second once unpacked.
"$root/scripts/engines/fetch.sh" docker28

# /_ping of a DOCKER_HOST value (unix:// or tcp://); true when it answers OK.
ping_host() {
    local host=$1 out
    case "$host" in
    unix://*) out=$(curl -fsS --max-time 3 --unix-socket "${host#unix://}" http://localhost/_ping 2>/dev/null) ;;
    tcp://*) out=$(curl -fsS --max-time 3 "http://${host#tcp://}/_ping" 2>/dev/null) ;;
    *) return 1 ;;
    esac
    [ "$out" = "OK" ]
}

in_matrix() {
    local e
    for e in "${matrix[@]}"; do [ "$e" != "$1" ] || return 0; done
    return 1
}

# The script that starts and stops engine $1, and its extra start arguments.
engine_script() {
    case "$1" in
    docker20) echo "$root/scripts/dockerd.sh" ;;
    docker28 | docker28-containerd) echo "$root/scripts/engines/docker28.sh" ;;
    podman4) echo "$root/scripts/podman.sh" ;;
    podman5) echo "$root/scripts/engines/podman5.sh" ;;
    esac
}
engine_store() {
    case "$1" in
    docker28) echo overlay2 ;;
    docker28-containerd) echo containerd ;;
    esac
}

work=$(mktemp -d "${TMPDIR:-/tmp}/stagesweep-test.XXXXXX")
# Each engine started: its dir in $work/<engine>.dir (written before it starts, so that a
# failed start is stopped too), its DOCKER_HOST in $work/<engine>.host.
engine_dir() { cat "$work/$1.dir" 2>/dev/null || true; }
engine_host() { cat "$work/$1.host" 2>/dev/null || true; }

# Stop the private engines, remove the logs and exit with the status given (else the one on
# entry).
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local rc=${1:-$?} f e stops=0
    trap - EXIT INT TERM
    # Lanes still running (an interrupt): stop them first.
    jobs -p | xargs -r kill 2>/dev/null || true
    wait 2>/dev/null || true
    for f in "$work"/*.dir; do
        [ -f "$f" ] || continue
        e=$(basename "$f" .dir)
        "$(engine_script "$e")" stop "$(cat "$f")" &
    done
    wait || stops=$?
    [ "$stops" -eq 0 ] || echo "test.sh: stopping a private engine failed" >&2
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start engine $1 privately. Short dirs: unix socket paths are limited to 107 bytes.
start_engine() {
    local e=$1 dir started=$SECONDS store host
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ss-$e.XXXXXX")
    echo "$dir" >"$work/$e.dir"
    store=$(engine_store "$e")
    # shellcheck disable=SC2086 # no store argument for the engines that have one store
    host=$("$(engine_script "$e")" start "$dir" $store)
    echo "$host" >"$work/$e.host"
    echo "test.sh: private $e ready at $host in $((SECONDS - started))s"
}

# The environment of a lane on engine $1: DOCKER_HOST, STAGESWEEP_TEST_ENGINE, and for Docker
# 28.5 its CLI with buildx (DIR/env: DOCKER_CONFIG, PATH).
engine_env() {
    local e=$1
    case "$e" in
    docker28 | docker28-containerd)
        set -a
        # shellcheck disable=SC1091
        . "$(engine_dir "$e")/env"
        set +a
        ;;
    esac
    DOCKER_HOST=$(engine_host "$e")
    export DOCKER_HOST STAGESWEEP_TEST_ENGINE=$e
}

# Extra arguments of the engine binary on engine $1. One test at a time on Podman: Podman
# 4.3's /images/json fails ("image not known") when another client deletes an image while it
# lists, and the tests of one binary run side by side.
engine_args() {
    case "$1" in
    podman4 | podman5) echo "--test-threads=1" ;;
    esac
}

# One closing line over every log (each test binary prints one "test result" line; each
# skipped test one SKIPPED text, often after another test's name: tests run side by side).
count() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
         { s += gsub(/SKIPPED [^ ]+ on [^ ]+: /, "&") }
         END { printf "tests: %d passed, %d failed, %d skipped (counted as passed; their SKIPPED lines say why)\n", p, f, s }' "$@"
}

if [ "${STAGESWEEP_REUSE_DOCKER_HOST:-0}" = 1 ] && [ -n "${DOCKER_HOST:-}" ] && ping_host "$DOCKER_HOST"; then
    echo "test.sh: reusing DOCKER_HOST=$DOCKER_HOST (STAGESWEEP_REUSE_DOCKER_HOST=1) as docker20"
    echo "$DOCKER_HOST" >"$work/docker20.host"
else
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: must run as root to start the private engines (try: sudo scripts/test.sh)," >&2
        echo "test.sh: or set STAGESWEEP_REUSE_DOCKER_HOST=1, DOCKER_HOST to a daemon you may use and STAGESWEEP_TEST_ENGINES=" >&2
        exit 1
    fi
fi

# ---- with ARGS: one cargo test per engine, as asked ----------------------------------------
if [ "$#" -gt 0 ]; then
    read -r -a engines <<<"${STAGESWEEP_TEST_ENGINES-docker20}"
    rc=0
    for e in "${engines[@]}"; do
        in_matrix "$e" || { echo "test.sh: STAGESWEEP_TEST_ENGINES: $e is not one of ${matrix[*]}" >&2; exit 2; }
        [ -n "$(engine_host "$e")" ] || start_engine "$e"
        extra=()
        read -r -a extra <<<"$(engine_args "$e")"
        sep=(--)
        for a in "$@"; do [ "$a" != -- ] || sep=(); done
        [ "${#extra[@]}" -gt 0 ] || sep=()
        set +e
        (engine_env "$e" && cargo test --locked --features host-tests "$@" "${sep[@]}" "${extra[@]}") 2>&1 |
            tee "$work/$e.log"
        lane_rc=${PIPESTATUS[0]}
        set -e
        [ "$lane_rc" -eq 0 ] || rc=$lane_rc
    done
    count "$work"/*.log
    exit "$rc"
fi

# ---- the whole suite: build once, then the lanes ----------------------------------------------
read -r -a engines <<<"${STAGESWEEP_TEST_ENGINES-${matrix[*]:1}}"
for e in "${engines[@]}"; do
    in_matrix "$e" || { echo "test.sh: STAGESWEEP_TEST_ENGINES: $e is not one of ${matrix[*]}" >&2; exit 2; }
done
lanes=(docker20 package)
for e in "${engines[@]}"; do [ "$e" = docker20 ] || lanes+=("$e"); done
# The newer engines come unpacked from Debian sid (once; < 1 s when present).
case " ${engines[*]} " in
*" docker28"* | *" podman5 "*)
    started=$SECONDS
    "$root/scripts/engines/fetch.sh" all >"$work/fetch.log" 2>&1 ||
        { cat "$work/fetch.log" >&2; echo "test.sh: scripts/engines/fetch.sh all failed" >&2; exit 1; }
    echo "test.sh: engines fetched (scripts/engines/fetch.sh all) in $((SECONDS - started))s"
    ;;
esac

started=$SECONDS
# Every test executable, as `KIND:NAME PATH` (lib:stagesweep, test:engine, bench:plan, …).
cargo test --locked --features host-tests --all-targets --no-run \
    --message-format=json-render-diagnostics >"$work/build.json"
jq -r 'select(.reason == "compiler-artifact" and .executable != null and .profile.test)
       | "\(.target.kind[0]):\(.target.name) \(.executable)"' "$work/build.json" >"$work/executables"
echo "test.sh: built the suite in $((SECONDS - started))s"
exe() {
    local path
    path=$(awk -v k="$1" '$1 == k { print $2 }' "$work/executables")
    [ -n "$path" ] || { echo "test.sh: no test executable $1 (see $work/executables)" >&2; return 1; }
    echo "$path"
}

# The engines, started side by side (each in about a second).
for e in docker20 "${engines[@]}"; do
    [ -n "$(engine_host "$e")" ] || start_engine "$e" >"$work/start-$e.log" 2>&1 &
done
wait_rc=0
wait || wait_rc=$?
cat "$work"/start-*.log 2>/dev/null || true
[ "$wait_rc" -eq 0 ] || { echo "test.sh: starting a private engine failed (above)" >&2; exit 1; }

# Run test executables one after the other (each `NAME [ARGS…]` given as one word, split on
# spaces); every one runs even when an earlier one failed; the lane fails when any did.
lane() {
    local name=$1 rc=0 spec
    shift
    local started=$SECONDS
    for spec in "$@"; do
        # shellcheck disable=SC2086 # a spec is an executable and its arguments
        set -- $spec
        local path
        path=$(exe "$1") || { rc=1; continue; }
        shift
        echo "     Running $spec ($path)"
        "$path" "$@" || rc=1
    done
    echo "test.sh: lane $name ended (status $rc) after $((SECONDS - started))s"
    return "$rc"
}

# Each lane writes its own time in seconds ($work/NAME.time) when it ends.
declare -A lane_pid
run_lane() {
    local name=$1
    shift
    (
        local begun=$SECONDS rc=0
        "$@" || rc=$?
        echo "$((SECONDS - begun))" >"$work/$name.time"
        exit "$rc"
    ) >"$work/$name.log" 2>&1 &
    lane_pid[$name]=$!
}

docker20_lane() {
    engine_env docker20
    lane docker20 lib:stagesweep bin:stagesweep test:pure test:docs test:faults \
        test:agent test:engine bench:engine_tool bench:history bench:plan
}
package_lane() {
    engine_env docker20
    lane package test:package
}
engine_lane() {
    engine_env "$1"
    lane "$1" "test:engine $(engine_args "$1")"
}
run_lane docker20 docker20_lane
run_lane package package_lane
for e in "${lanes[@]:2}"; do run_lane "$e" engine_lane "$e"; done

rc=0
for name in "${lanes[@]}"; do
    lane_rc=0
    wait "${lane_pid[$name]}" || lane_rc=$?
    [ "$lane_rc" -eq 0 ] || rc=1
    echo "$lane_rc" >"$work/$name.rc"
done
for name in "${lanes[@]}"; do
    lane_rc=$(cat "$work/$name.rc")
    echo "==== lane $name: $( [ "$lane_rc" -eq 0 ] && echo ok || echo "FAILED ($lane_rc)") ===="
    cat "$work/$name.log"
done
echo "test.sh: the suite took $((SECONDS - started))s (build and lanes)"
# Per lane: status, time, and its tests.
for name in "${lanes[@]}"; do
    printf 'test.sh: lane %-20s %-6s %4ss  %s\n' "$name" \
        "$( [ "$(cat "$work/$name.rc")" -eq 0 ] && echo ok || echo FAILED)" \
        "$(cat "$work/$name.time" 2>/dev/null || echo '?')" "$(count "$work/$name.log")"
done
logs=()
for name in "${lanes[@]}"; do logs+=("$work/$name.log"); done
count "${logs[@]}"
exit "$rc"
