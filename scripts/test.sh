#!/usr/bin/env bash
# The test command: install the Debian packages the tests need when missing
# (scripts/install-deps.sh, the list in scripts/debian-packages.txt), start a PRIVATE throwaway
# dockerd, run the whole test suite against it, and always stop the daemon again.
#
#   scripts/test.sh                    cargo test --locked --features host-tests --all-targets
#   scripts/test.sh ARGS...            the same with ARGS (e.g. --test engine -- engine_docker::)
#
# The test binaries are one per harness (CONTRIBUTING.md, "Tests"): pure, faults and docs run
# with a plain `cargo test` too; engine, agent, package and the host-dependent modules of
# faults and docs need the `host-tests` feature, which this script turns on.
#
# The daemon lives in a mktemp directory (own data-root, exec-root, pidfile, socket), has no
# networking of its own and is stopped on any exit (trap), with its containerd and mounts.
# Needs root to install packages and to start dockerd.
#
# With no ARGS, the engine tests then run a second time against a private Podman service
# (scripts/podman.sh); see the Podman block below.
#
# An inherited DOCKER_HOST is NOT used by default (the suite then cannot touch a daemon you
# care about). Set STAGESWEEP_REUSE_DOCKER_HOST=1 to run against $DOCKER_HOST instead when it
# answers /_ping; tests only touch images and containers carrying their own unique label.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh"

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
# Stop the private dockerd and exit with the status given (else the one on entry).
stop_daemon() {
    local rc=${1:-$?}
    trap - EXIT INT TERM
    if [ -n "$daemon_dir" ]; then
        "$root/scripts/dockerd.sh" stop "$daemon_dir" || echo "test.sh: stopping the private dockerd failed" >&2
    fi
    exit "$rc"
}

if [ "${STAGESWEEP_REUSE_DOCKER_HOST:-0}" = 1 ] && [ -n "${DOCKER_HOST:-}" ] && ping_host "$DOCKER_HOST"; then
    echo "test.sh: reusing DOCKER_HOST=$DOCKER_HOST (STAGESWEEP_REUSE_DOCKER_HOST=1)"
else
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: must run as root to start a private dockerd (try: sudo scripts/test.sh)," >&2
        echo "test.sh: or set STAGESWEEP_REUSE_DOCKER_HOST=1 and DOCKER_HOST to a daemon you may use" >&2
        exit 1
    fi
    daemon_dir=$(mktemp -d "${TMPDIR:-/tmp}/stagesweep-dockerd.XXXXXX")
    trap stop_daemon EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    started=$SECONDS
    DOCKER_HOST=$("$root/scripts/dockerd.sh" start "$daemon_dir")
    export DOCKER_HOST
    echo "test.sh: private dockerd ready at $DOCKER_HOST in $((SECONDS - started))s"
fi

# Arguments replace the default --all-targets (e.g. --test engine, or --lib -- fake).
full_suite=false
[ "$#" -gt 0 ] || { full_suite=true; set -- --all-targets; }
log=$(mktemp "${TMPDIR:-/tmp}/stagesweep-test.XXXXXX")
set +e
cargo test --locked --features host-tests "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# ---- Podman (issue 13): the engine tests again, against a private Podman service ----------
# After the full suite, the engine test crates below run once more with DOCKER_HOST at a
# private `podman system service` (scripts/podman.sh: own root, runroot, socket, no registry)
# and STAGESWEEP_TEST_ENGINE=podman, which the tests read for what differs (names, messages).
# Every test of these crates runs on Podman today (the agent, sidecar, TLS and systemd
# crates start or drive a dockerd of their own and stay Docker only); a test that needs what
# Podman cannot do goes into podman_skips, with the reason beside it. STAGESWEEP_TEST_PODMAN=0 skips this block;
# STAGESWEEP_TEST_PODMAN=1 runs it after ARGS runs too (e.g. --test engine_names).
podman_tests=(--test engine)
# The modules of the engine binary that run on Podman too (test-name filters).
podman_modules=(engine_docker:: engine_prune:: engine_cli:: engine_names::)
podman_skips=() # none today: `name # why` per line
podman_dir=""
stop_podman() {
    if [ -n "$podman_dir" ]; then
        "$root/scripts/podman.sh" stop "$podman_dir" || echo "test.sh: stopping the private podman failed" >&2
        podman_dir=""
    fi
}
run_podman=${STAGESWEEP_TEST_PODMAN:-$full_suite}
if [ "$run_podman" = 1 ] || [ "$run_podman" = true ]; then
    # Not `(exit "$rc_")` before stop_daemon: under set -e a failing status there would end
    # the trap before the dockerd is stopped.
    trap 'rc_=$?; stop_podman; stop_daemon "$rc_"' EXIT
    podman_dir=$(mktemp -d "${TMPDIR:-/tmp}/stagesweep-podman.XXXXXX")
    started=$SECONDS
    podman_host=$("$root/scripts/podman.sh" start "$podman_dir")
    echo "test.sh: private podman ready at $podman_host in $((SECONDS - started))s"
    skip_args=(-- "${podman_modules[@]}")
    if [ "$full_suite" != true ]; then
        podman_tests=("$@")
        skip_args=(--)
        for a in "${podman_tests[@]}"; do [ "$a" != -- ] || skip_args=(); done
    fi
    # One test at a time: Podman 4.3's /images/json fails ("image not known") when another
    # client deletes an image while it lists, and the tests of one crate run side by side.
    skip_args+=(--test-threads=1)
    for t in "${podman_skips[@]}"; do skip_args+=(--skip "$t"); done
    set +e
    DOCKER_HOST=$podman_host STAGESWEEP_TEST_ENGINE=podman \
        cargo test --locked --features host-tests "${podman_tests[@]}" "${skip_args[@]}" 2>&1 | tee -a "$log"
    podman_rc=${PIPESTATUS[0]}
    set -e
    echo "test.sh: podman run took $((SECONDS - started))s"
    stop_podman
    [ "$rc" -ne 0 ] || rc=$podman_rc
fi
# ---- end of the Podman block ------------------------------------------------------------
# One closing line over every test binary (cargo prints one "test result" per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$rc"
