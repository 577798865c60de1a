#!/usr/bin/env bash
# Start or stop a PRIVATE, throwaway Podman 5 API service (Debian sid's podman with sid's glibc
# beside it, fetched by `scripts/engines/fetch.sh podman5`), every file under one directory:
# the same contract as scripts/podman.sh (bookworm's 4.3), beside which it can run.
#
#   scripts/engines/podman5.sh start DIR   start it, wait until /_ping answers, print its
#                                          DOCKER_HOST (the only line on stdout)
#   scripts/engines/podman5.sh stop DIR    stop it (its containers first: podman rm -af -t 0),
#                                          unmount under DIR, delete DIR
#
# `podman system service -t 0` with its own containers.conf, storage.conf and registries.conf
# (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF: the system's
# /etc/containers and /usr/share/containers files, written for 4.3, are not read): storage in
# DIR/root (graphroot) and DIR/runroot, libpod state, events log and file locks in DIR/tmp
# (lock_type "file": not the host-wide /dev/shm/libpod_lock that rootful Podmans otherwise
# share, and that each new one frees on its first start), network config in DIR/networks,
# cgroupfs (containers under /libpod_parent, as 4.3's: the compat API has no cgroup parent
# setting; their IDs keep them apart), no registry but the tests' local one (127.0.0.1, insecure). conmon, runc and netavark are bookworm's (sid's conmon needs
# a newer glib, sid's crun refuses hybrid cgroups). Containers get nofile 20000 and nproc 4096
# (this VM lacks CAP_SYS_RESOURCE: runc fails to raise rlimits above the hard limit).
#
# DIR/env (source it: `set -a; . DIR/env; set +a`) sets DOCKER_HOST and puts DIR/bin/podman,
# a wrapper with the same configuration, first on PATH (`podman images` etc. on this store).
# Needs root and curl. STAGESWEEP_PODMAN_TIMEOUT (seconds, default 60) bounds the wait.
set -euo pipefail
prog=podman5.sh
# shellcheck source=scripts/engines/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

eng=$engines_dir/podman5

abspath() {
    case "$1" in /*) echo "${1%/}" ;; *) echo "$PWD/${1%/}" ;; esac
}

start() {
    local dir
    dir=$(abspath "$1")
    need_root "a rootful podman service with its own storage"
    if [ ! -x "$eng/bin/podman" ] || [ ! -f "$eng/VERSIONS" ]; then
        die "Podman 5 is not fetched into $eng: run scripts/engines/fetch.sh podman5 (or set STAGESWEEP_ENGINES_DIR)"
    fi
    command -v curl >/dev/null 2>&1 || die "curl not found (install it: apt-get install -y curl)"
    local c
    for c in conmon runc; do
        command -v "$c" >/dev/null 2>&1 || die "$c not found (bookworm's runs Podman 5's containers; install it: apt-get install -y podman)"
    done
    [ "${#dir}" -le 60 ] || die "DIR $dir is too long for unix socket paths (keep it under 60 characters, e.g. mktemp -d /tmp/p5.XXXXXX)"
    mkdir -p "$dir/root" "$dir/runroot" "$dir/tmp" "$dir/networks" "$dir/bin"
    cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
cgroups = "enabled"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/tmp/events.log"
tmp_dir = "$dir/tmp"
lock_type = "file"
conmon_path = ["$(command -v conmon)"]
runtime = "runc"
helper_binaries_dir = ["/usr/lib/podman", "/usr/libexec/podman", "/usr/local/libexec/podman"]
active_service = ""

[network]
network_backend = "netavark"
network_config_dir = "$dir/networks"
EOF
    cat >"$dir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$dir/root"
runroot = "$dir/runroot"
EOF
    # As scripts/podman.sh: no search registries; the tests' own registry (127.0.0.1, plain
    # HTTP, a random port) is insecure.
    printf '[[registry]]\nlocation = "127.0.0.1"\ninsecure = true\n' >"$dir/registries.conf"

    local -a envs=(
        "CONTAINERS_CONF=$dir/containers.conf"
        "CONTAINERS_STORAGE_CONF=$dir/storage.conf"
        "CONTAINERS_REGISTRIES_CONF=$dir/registries.conf"
        PODMAN_IGNORE_CGROUPSV1_WARNING=1
    )
    # A podman CLI on this service's store, for people and scripts.
    {
        echo '#!/bin/sh'
        echo "# Podman 5 on the store of $dir"
        printf 'export %q\n' "${envs[@]}"
        printf 'exec %q "$@"\n' "$eng/bin/podman"
    } >"$dir/bin/podman"
    chmod +x "$dir/bin/podman"

    local sock=$dir/podman.sock
    env "${envs[@]}" "$eng/bin/podman" system service --time 0 "unix://$sock" \
        >"$dir/podman.log" 2>&1 &
    echo $! >"$dir/podman.pid"
    wait_until "${STAGESWEEP_PODMAN_TIMEOUT:-60}" "$(cat "$dir/podman.pid")" "$dir/podman.log" \
        "the podman 5 service" STAGESWEEP_PODMAN_TIMEOUT ping_socket "$sock"
    {
        echo "# Podman 5 in $dir: set -a; . $dir/env; set +a"
        printf 'DOCKER_HOST=%q\n' "unix://$sock"
        # shellcheck disable=SC2016 # $PATH expands when the file is sourced
        printf 'PATH=%q:"$PATH"\n' "$dir/bin"
    } >"$dir/env"
    echo "unix://$sock"
}

stop() {
    local dir p pids
    dir=$(abspath "$1")
    [ -d "$dir" ] || return 0
    # Containers go first, through podman itself on this store (a throwaway: no grace time).
    if [ -x "$dir/bin/podman" ] && [ -x "$eng/bin/podman" ]; then
        timeout 60 "$dir/bin/podman" rm --all --force --time 0 >/dev/null 2>&1 || true
    fi
    stop_pidfile "$dir/podman.pid" 100
    # conmons of this store still there (their command lines name files under DIR).
    pids=$(grep -lzF -f <(printf '%s\n' "$dir/") /proc/[0-9]*/cmdline 2>/dev/null |
        sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p' || true)
    for p in $pids; do
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = conmon ]; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    umount_under "$dir"
    rm -rf "$dir" 2>/dev/null || echo "$prog: could not remove all of $dir" >&2
}

case "${1:-}" in
start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 start DIR | stop DIR" ;;
esac
