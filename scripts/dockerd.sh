#!/usr/bin/env bash
# Start or stop a PRIVATE, throwaway dockerd whose every file lives under one directory.
#
#   scripts/dockerd.sh start DIR   start it, wait until /_ping answers, print its DOCKER_HOST
#   scripts/dockerd.sh stop DIR    stop it (and its containerd), unmount and delete DIR
#
# The daemon has its own --data-root, --exec-root, --pidfile and socket under DIR, and no
# networking of its own (--iptables=false --ip-masq=false --bridge=none), so it never touches
# the system's daemon. Needs root. STAGESWEEP_DOCKERD_TIMEOUT (seconds, default 60) bounds the
# start-up wait.
set -euo pipefail

die() {
    echo "dockerd.sh: $*" >&2
    exit 1
}

# /_ping through the socket; curl when present, else the docker CLI.
ping_daemon() {
    local sock=$1
    if command -v curl >/dev/null 2>&1; then
        [ "$(curl -fsS --max-time 2 --unix-socket "$sock" http://localhost/_ping 2>/dev/null)" = "OK" ]
    else
        docker -H "unix://$sock" version >/dev/null 2>&1
    fi
}

start() {
    local dir=$1
    [ "$(id -u)" -eq 0 ] || die "must run as root (dockerd needs it); run with sudo, or set DOCKER_HOST to a daemon you can use"
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found (install it: apt-get install -y docker.io)"
    mkdir -p "$dir/data" "$dir/exec"
    local sock="$dir/docker.sock"
    dockerd \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" \
        --host "unix://$sock" \
        --iptables=false --ip-masq=false --bridge=none \
        >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/dockerd.launcher.pid"

    local timeout=${STAGESWEEP_DOCKERD_TIMEOUT:-60}
    local deadline=$((SECONDS + timeout))
    until ping_daemon "$sock"; do
        if ! kill -0 "$(cat "$dir/dockerd.launcher.pid")" 2>/dev/null; then
            echo "dockerd.sh: dockerd exited during start-up; last lines of $dir/dockerd.log:" >&2
            tail -n 30 "$dir/dockerd.log" >&2 || true
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "dockerd.sh: dockerd did not answer /_ping within ${timeout}s (raise STAGESWEEP_DOCKERD_TIMEOUT); last lines of $dir/dockerd.log:" >&2
            tail -n 30 "$dir/dockerd.log" >&2 || true
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
    [ -f "$dir/dockerd.launcher.pid" ] && pid=$(cat "$dir/dockerd.launcher.pid")
    [ -z "$pid" ] && [ -f "$dir/docker.pid" ] && pid=$(cat "$dir/docker.pid")
    # containerd started by this dockerd writes its pid under our exec-root.
    local cpid=""
    [ -f "$dir/exec/containerd/containerd.pid" ] && cpid=$(cat "$dir/exec/containerd/containerd.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 200 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 50 || true; }
    fi
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
        kill -TERM "$cpid" 2>/dev/null || true
        wait_gone "$cpid" 100 || kill -KILL "$cpid" 2>/dev/null || true
    fi
    # Leftover mounts (overlay layers, netns, shm) under DIR, deepest first.
    if [ -r /proc/self/mounts ]; then
        awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null || true; done
    fi
    rm -rf "$dir" 2>/dev/null || echo "dockerd.sh: could not remove all of $dir" >&2
}

case "${1:-}" in
start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 start DIR | stop DIR" ;;
esac
