#!/usr/bin/env bash
# Start or stop a PRIVATE, throwaway Podman API service whose every file lives under one
# directory: the second engine the engine tests run against (see scripts/test.sh).
#
#   scripts/podman.sh start DIR   start it, wait until /_ping answers, print its DOCKER_HOST
#   scripts/podman.sh stop DIR    stop it, unmount and delete DIR
#
# `podman system service -t 0` with its own --root (images, layers, libpod database),
# --runroot, --tmpdir (libpod state, events log), --network-config-dir and socket under DIR,
# a registries.conf with no search registries (only the tests' own local registry, as insecure) and cgroupfs, so it never touches the
# system's containers storage and needs neither systemd nor the network. Needs root.
# STAGESWEEP_PODMAN_TIMEOUT (seconds, default 60) bounds the start-up wait.
set -euo pipefail

die() {
    echo "podman.sh: $*" >&2
    exit 1
}

ping_service() {
    [ "$(curl -fsS --max-time 2 --unix-socket "$1" http://localhost/_ping 2>/dev/null)" = "OK" ]
}

start() {
    local dir=$1
    [ "$(id -u)" -eq 0 ] || die "must run as root (a rootful podman service with its own storage)"
    command -v podman >/dev/null 2>&1 || die "podman not found (install it: apt-get install -y podman)"
    command -v curl >/dev/null 2>&1 || die "curl not found (install it: apt-get install -y curl)"
    mkdir -p "$dir/root" "$dir/runroot" "$dir/tmp" "$dir/networks"
    # No registry is searched for short names; the tests' own registry (tests/support/
    # registry.rs: plain HTTP on 127.0.0.1 and a random port) is insecure, as dockerd treats
    # 127.0.0.0/8 by default. (Podman 4 matches the prefix 127.0.0.1 for any port.)
    printf '[[registry]]\nlocation = "127.0.0.1"\ninsecure = true\n' >"$dir/registries.conf"
    local sock="$dir/podman.sock"
    CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" podman \
        --root "$dir/root" \
        --runroot "$dir/runroot" \
        --tmpdir "$dir/tmp" \
        --network-config-dir "$dir/networks" \
        --cgroup-manager cgroupfs \
        --events-backend file \
        --storage-driver overlay \
        system service --time 0 "unix://$sock" \
        >"$dir/podman.log" 2>&1 &
    echo $! >"$dir/podman.pid"

    local timeout=${STAGESWEEP_PODMAN_TIMEOUT:-60}
    local deadline=$((SECONDS + timeout))
    until ping_service "$sock"; do
        if ! kill -0 "$(cat "$dir/podman.pid")" 2>/dev/null; then
            echo "podman.sh: the podman service exited during start-up; last lines of $dir/podman.log:" >&2
            tail -n 30 "$dir/podman.log" >&2 || true
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "podman.sh: podman did not answer /_ping within ${timeout}s (raise STAGESWEEP_PODMAN_TIMEOUT); last lines of $dir/podman.log:" >&2
            tail -n 30 "$dir/podman.log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    echo "unix://$sock"
}

# Wait up to $2 tenths of a second for process $1 to go away.
wait_gone() {
    local pid=$1 tenths=$2
    while kill -0 "$pid" 2>/dev/null && [ "$tenths" -gt 0 ]; do
        sleep 0.1
        tenths=$((tenths - 1))
    done
    ! kill -0 "$pid" 2>/dev/null
}

stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    local pid=""
    [ -f "$dir/podman.pid" ] && pid=$(cat "$dir/podman.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 100 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 50 || true; }
    fi
    # Leftover mounts (overlay layers, shm) under DIR, deepest first.
    if [ -r /proc/self/mounts ]; then
        awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null || true; done
    fi
    rm -rf "$dir" 2>/dev/null || echo "podman.sh: could not remove all of $dir" >&2
}

case "${1:-}" in
start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 start DIR | stop DIR" ;;
esac
