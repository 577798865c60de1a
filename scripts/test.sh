#!/usr/bin/env bash
# The test command: install the Debian packages the tests need when missing
# (scripts/install-deps.sh, the list in scripts/debian-packages.txt), start PRIVATE throwaway
# engines, run the whole test suite against them, and always stop them again.
#
#   scripts/test.sh              the whole suite, built once, run in parallel lanes (below)
#   scripts/test.sh ARGS...      cargo test --locked --features host-tests ARGS against the
#                                private dockerd (e.g. --test engine -- engine_docker::)
#
# The test binaries are one per harness (CONTRIBUTING.md, "Tests"): pure, faults and docs run
# with a plain `cargo test` too; engine, agent, package and the host-dependent modules of
# faults and docs need the `host-tests` feature, which this script turns on.
#
# The whole suite is compiled once (`cargo test --no-run`), then its binaries run in lanes,
# side by side, each with its own log (printed whole when the lane ends):
#   docker   the unit tests, pure, docs, faults, agent and engine, one after the other,
#            against a private dockerd (scripts/dockerd.sh: own data-root, exec-root,
#            pidfile and socket in a mktemp dir, no networking);
#   package  the .deb and the sidecar image (release builds, mostly CPU) on the same dockerd;
#   podman   the engine binary's modules that run on Podman too, against a private Podman
#            service (scripts/podman.sh), with STAGESWEEP_TEST_ENGINE=podman.
# Lanes never share images: every test labels what it makes with its own unique label.
# STAGESWEEP_TEST_PODMAN=0 leaves the podman lane out (=1 adds it to a run with ARGS).
# The closing `tests: N passed, N failed` line counts every lane.
#
# An inherited DOCKER_HOST is NOT used by default (the suite then cannot touch a daemon you
# care about). Set STAGESWEEP_REUSE_DOCKER_HOST=1 to run against $DOCKER_HOST instead when it
# answers /_ping; tests only touch images and containers carrying their own unique label.
# Needs root to install packages and to start the engines.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

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

daemon_dir=""
podman_dir=""
work=$(mktemp -d "${TMPDIR:-/tmp}/stagesweep-test.XXXXXX")
# Stop the private engines, remove the logs and exit with the status given (else the one on
# entry).
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local rc=${1:-$?}
    trap - EXIT INT TERM
    # Lanes still running (an interrupt): stop them first.
    jobs -p | xargs -r kill 2>/dev/null || true
    wait 2>/dev/null || true
    if [ -n "$podman_dir" ]; then
        "$root/scripts/podman.sh" stop "$podman_dir" || echo "test.sh: stopping the private podman failed" >&2
    fi
    if [ -n "$daemon_dir" ]; then
        "$root/scripts/dockerd.sh" stop "$daemon_dir" || echo "test.sh: stopping the private dockerd failed" >&2
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${STAGESWEEP_REUSE_DOCKER_HOST:-0}" = 1 ] && [ -n "${DOCKER_HOST:-}" ] && ping_host "$DOCKER_HOST"; then
    echo "test.sh: reusing DOCKER_HOST=$DOCKER_HOST (STAGESWEEP_REUSE_DOCKER_HOST=1)"
else
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: must run as root to start a private dockerd (try: sudo scripts/test.sh)," >&2
        echo "test.sh: or set STAGESWEEP_REUSE_DOCKER_HOST=1 and DOCKER_HOST to a daemon you may use" >&2
        exit 1
    fi
    daemon_dir=$(mktemp -d "${TMPDIR:-/tmp}/stagesweep-dockerd.XXXXXX")
    started=$SECONDS
    DOCKER_HOST=$("$root/scripts/dockerd.sh" start "$daemon_dir")
    export DOCKER_HOST
    echo "test.sh: private dockerd ready at $DOCKER_HOST in $((SECONDS - started))s"
fi

# The engine binary's modules that run on Podman too (test-name filters); a test that needs
# what Podman cannot do goes into podman_skips, with the reason beside it. One test at a time:
# Podman 4.3's /images/json fails ("image not known") when another client deletes an image
# while it lists, and the tests of one binary run side by side.
podman_modules=(engine_docker:: engine_prune:: engine_cli:: engine_names::)
podman_skips=() # none today: `name # why` per line
podman_args=(--test-threads=1)
for t in "${podman_skips[@]}"; do podman_args+=(--skip "$t"); done

start_podman() {
    podman_dir=$(mktemp -d "${TMPDIR:-/tmp}/stagesweep-podman.XXXXXX")
    local started=$SECONDS
    podman_host=$("$root/scripts/podman.sh" start "$podman_dir")
    echo "test.sh: private podman ready at $podman_host in $((SECONDS - started))s"
}

# One closing line over every log (each test binary prints one "test result" line).
count() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
         END { printf "tests: %d passed, %d failed\n", p, f }' "$@"
}

# ---- with ARGS: one cargo test, as asked ---------------------------------------------------
if [ "$#" -gt 0 ]; then
    set +e
    cargo test --locked --features host-tests "$@" 2>&1 | tee "$work/args.log"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "${STAGESWEEP_TEST_PODMAN:-0}" = 1 ]; then
        start_podman
        skip_args=(--)
        for a in "$@"; do [ "$a" != -- ] || skip_args=(); done
        set +e
        DOCKER_HOST=$podman_host STAGESWEEP_TEST_ENGINE=podman \
            cargo test --locked --features host-tests "$@" "${skip_args[@]}" "${podman_args[@]}" 2>&1 |
            tee "$work/podman.log"
        [ "$rc" -ne 0 ] || rc=${PIPESTATUS[0]}
        set -e
    fi
    count "$work"/*.log
    exit "$rc"
fi

# ---- the whole suite: build once, then the lanes ----------------------------------------------
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

declare -A lane_pid
run_lane() {
    local name=$1
    shift
    ("$@") >"$work/$name.log" 2>&1 &
    lane_pid[$name]=$!
}

run_lane docker lane docker lib:stagesweep bin:stagesweep test:pure test:docs test:faults \
    test:agent test:engine bench:engine_tool bench:history bench:plan
run_lane package lane package test:package
podman_lane() {
    export DOCKER_HOST=$podman_host STAGESWEEP_TEST_ENGINE=podman
    lane podman "test:engine ${podman_modules[*]} ${podman_args[*]}"
}
if [ "${STAGESWEEP_TEST_PODMAN:-1}" = 1 ]; then
    start_podman
    run_lane podman podman_lane
fi

rc=0
for name in docker package podman; do
    [ -n "${lane_pid[$name]:-}" ] || continue
    lane_rc=0
    wait "${lane_pid[$name]}" || lane_rc=$?
    echo "==== lane $name: $( [ "$lane_rc" -eq 0 ] && echo ok || echo "FAILED ($lane_rc)") ===="
    cat "$work/$name.log"
    [ "$lane_rc" -eq 0 ] || rc=1
done
echo "test.sh: the suite took $((SECONDS - started))s (build and lanes)"
logs=()
for name in docker package podman; do [ ! -f "$work/$name.log" ] || logs+=("$work/$name.log"); done
count "${logs[@]}"
exit "$rc"
