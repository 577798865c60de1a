#!/usr/bin/env bash
# Start or stop a PRIVATE, throwaway Docker 28.5 (Debian sid's docker.io, fetched by
# scripts/engines/fetch.sh) with its own containerd 2.x, every file under one directory: the
# same contract as scripts/dockerd.sh (bookworm's 20.10), beside which it can run.
#
#   scripts/engines/docker28.sh start DIR overlay2|containerd [CONTAINERD_ROOT]
#       start it, wait until /_ping answers, print its DOCKER_HOST (the only line on stdout)
#   scripts/engines/docker28.sh stop DIR
#       stop it (dockerd, containerd, their shims and containers), unmount under DIR (and
#       under the containerd root), delete DIR
#
# The image store: overlay2 (the graph driver, as 20.10) or containerd (the containerd image
# store, "containerd-snapshotter": images and snapshots live under containerd's root).
#
# containerd's root (content store, snapshots, metadata) is DIR/containerd/root unless given
# as CONTAINERD_ROOT or $STAGESWEEP_CONTAINERD_ROOT: an empty directory (a lost+found is
# allowed), e.g. a small tmpfs or loop filesystem a test mounted, to measure or fill. Its
# path is written to DIR/containerd-root (the Engine API does not report it). stop empties
# it and removes it unless it is a mount point (the caller unmounts its own filesystem).
#
# What else is in DIR:
#   env               source it for the docker 28 CLI with buildx:
#                     `set -a; . DIR/env; set +a` sets DOCKER_HOST, DOCKER_CONFIG and PATH
#   bin/docker        the docker 28 CLI;  docker-config/  DOCKER_CONFIG with cli-plugins/docker-buildx
#   docker.sock       the API;  data/ exec/ docker.pid dockerd.log daemon.json  dockerd's own
#   containerd/       config.toml containerd.sock containerd.log state/ (and root/)
#   store             overlay2 or containerd
#
# Isolation (several daemons, 20.10, 28.5 overlay2, 28.5 containerd, Podman, on one host):
# own sockets, own containerd (root, state, grpc/ttrpc socket; CRI, NRI and unused snapshotters
# off, so no NRI socket and no /opt/containerd), own data-root, exec-root (runc state), pidfile,
# cgroup parent (/stagesweep-<DIR's name>), daemon.json (not /etc/docker's), no networking of
# its own (--bridge=none, --iptables=false, --ip6tables=false, --ip-masq=false,
# --ip-forward=false: no sysctl, no iptables rule); containers need --network none or host,
# builds --network=none. Shared places: /run/containerd/s/, where containerd's shims put their
# sockets (named by a hash of our socket's path, so never the same as another's), and the empty
# /run/docker/plugins/ every dockerd creates.
# STAGESWEEP_DOCKERD_CONFIG, a JSON object, is merged into daemon.json (e.g.
# '{"builder":{"history":{"maxEntries":10}}}' for BuildKit's build records; needs jq).
# Keep DIR short (unix socket paths are limited to 107 bytes): mktemp -d /tmp/x.XXXXXX is fine.
#
# Needs root, curl, and bookworm's runc (sid's needs glibc 2.38). STAGESWEEP_DOCKERD_TIMEOUT
# (seconds, default 60) bounds the wait for containerd and for dockerd, each.
set -euo pipefail
prog=docker28.sh
# shellcheck source=scripts/engines/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

eng=$engines_dir/docker28

# Absolute, without a trailing slash (DIR may be given relative).
abspath() {
    case "$1" in /*) echo "${1%/}" ;; *) echo "$PWD/${1%/}" ;; esac
}

# The containerd configuration: every path private, only what dockerd uses.
containerd_config() {
    local dir=$1 croot=$2
    cat <<EOF
version = 3
root = '$croot'
state = '$dir/containerd/state'
temp = '$dir/containerd/tmp'
# CRI (Kubernetes), NRI (its socket would be /var/run/nri/nri.sock) and the snapshotters
# dockerd does not use (overlayfs and native stay).
disabled_plugins = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.cri.v1.images',
  'io.containerd.cri.v1.runtime',
  'io.containerd.nri.v1.nri',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs',
  'io.containerd.differ.v1.erofs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
]

[grpc]
  address = '$dir/containerd/containerd.sock'

[ttrpc]
  address = '$dir/containerd/containerd.sock.ttrpc'

[debug]
  address = ''

[metrics]
  address = ''

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '$dir/containerd/opt'
  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = '$dir/containerd/image-verifier'
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
    socket_path = '$dir/containerd/nri.sock'
    plugin_path = '$dir/containerd/nri/plugins'
    plugin_config_path = '$dir/containerd/nri/conf.d'
EOF
}

containerd_up() {
    "$eng/usr/bin/ctr" --address "$1" version >/dev/null 2>&1
}

start() {
    local dir store=$2 croot=${3:-${STAGESWEEP_CONTAINERD_ROOT:-}}
    dir=$(abspath "$1")
    need_root "dockerd and containerd need it"
    case "$store" in overlay2 | containerd) ;; *) die "unknown image store '$store': overlay2 or containerd" ;; esac
    if [ ! -x "$eng/usr/sbin/dockerd" ] || [ ! -f "$eng/VERSIONS" ]; then
        die "Docker 28 is not fetched into $eng: run scripts/engines/fetch.sh docker28 (or set STAGESWEEP_ENGINES_DIR)"
    fi
    command -v curl >/dev/null 2>&1 || die "curl not found (install it: apt-get install -y curl)"
    command -v runc >/dev/null 2>&1 || die "runc not found (bookworm's runs Docker 28's containers; install it: apt-get install -y runc)"
    if [ -n "$croot" ]; then
        croot=$(abspath "$croot")
        mkdir -p "$croot"
        [ -z "$(find "$croot" -mindepth 1 -maxdepth 1 ! -name lost+found -print -quit)" ] ||
            die "containerd root $croot is not empty; give an empty directory (it is emptied on stop)"
    else
        croot=$dir/containerd/root
    fi
    [ "${#dir}" -le 60 ] || die "DIR $dir is too long for the daemons' unix sockets (keep it under 60 characters, e.g. mktemp -d /tmp/d28.XXXXXX)"

    mkdir -p "$dir/data" "$dir/exec" "$dir/containerd/state" "$dir/containerd/tmp" "$dir/bin" \
        "$dir/docker-config/cli-plugins"
    echo "$store" >"$dir/store"
    echo "$croot" >"$dir/containerd-root"
    local name cgroup
    name=$(basename "$dir" | tr -c 'A-Za-z0-9_.\n-' '_')
    cgroup=/stagesweep-$name
    echo "$cgroup" >"$dir/cgroup-parent"

    # Sid's containerd, its shim, docker-init (tini) and docker-proxy first; runc from the system.
    local path="$eng/usr/bin:$eng/usr/sbin:${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}"
    case ":$path:" in *:/usr/sbin:*) ;; *) path=$path:/usr/local/sbin:/usr/sbin:/sbin ;; esac

    local timeout=${STAGESWEEP_DOCKERD_TIMEOUT:-60}
    # Processes started so far go again if start-up fails (DIR stays, for its logs).
    trap 'start_failed "$dir"' EXIT

    containerd_config "$dir" "$croot" >"$dir/containerd/config.toml"
    local csock=$dir/containerd/containerd.sock
    PATH=$path "$eng/usr/bin/containerd" --config "$dir/containerd/config.toml" \
        >"$dir/containerd/containerd.log" 2>&1 &
    echo $! >"$dir/containerd/containerd.pid"
    wait_until "$timeout" "$(cat "$dir/containerd/containerd.pid")" "$dir/containerd/containerd.log" \
        "containerd" STAGESWEEP_DOCKERD_TIMEOUT containerd_up "$csock"

    if [ "$store" = containerd ]; then
        echo '{"features":{"containerd-snapshotter":true}}' >"$dir/daemon.json"
    else
        echo '{"storage-driver":"overlay2","features":{"containerd-snapshotter":false}}' >"$dir/daemon.json"
    fi
    if [ -n "${STAGESWEEP_DOCKERD_CONFIG:-}" ]; then
        jq -e --argjson extra "$STAGESWEEP_DOCKERD_CONFIG" '. * $extra' "$dir/daemon.json" >"$dir/daemon.json.new" ||
            die "STAGESWEEP_DOCKERD_CONFIG is not a JSON object: $STAGESWEEP_DOCKERD_CONFIG"
        mv "$dir/daemon.json.new" "$dir/daemon.json"
    fi
    local sock=$dir/docker.sock
    PATH=$path "$eng/usr/sbin/dockerd" \
        --config-file "$dir/daemon.json" \
        --containerd "$csock" \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" \
        --host "unix://$sock" \
        --cgroup-parent "$cgroup" \
        --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false --bridge=none \
        >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/dockerd.launcher.pid"
    wait_until "$timeout" "$(cat "$dir/dockerd.launcher.pid")" "$dir/dockerd.log" \
        "dockerd" STAGESWEEP_DOCKERD_TIMEOUT ping_socket "$sock"
    trap - EXIT

    # The docker 28 CLI with the buildx plugin, for callers: DIR/env.
    ln -sf "$eng/usr/bin/docker" "$dir/bin/docker"
    ln -sf "$eng/usr/libexec/docker/cli-plugins/docker-buildx" "$dir/docker-config/cli-plugins/docker-buildx"
    [ -f "$dir/docker-config/config.json" ] || echo '{}' >"$dir/docker-config/config.json"
    {
        echo "# Docker 28.5 ($store store) in $dir: set -a; . $dir/env; set +a"
        printf 'DOCKER_HOST=%q\n' "unix://$sock"
        printf 'DOCKER_CONFIG=%q\n' "$dir/docker-config"
        # shellcheck disable=SC2016 # $PATH expands when the file is sourced
        printf 'PATH=%q:"$PATH"\n' "$dir/bin"
    } >"$dir/env"
    echo "unix://$sock"
}

start_failed() {
    local rc=$?
    [ "$rc" -ne 0 ] || return 0
    stop_processes "$1"
    echo "$prog: start-up failed; logs stay in $1 (run: $0 stop $1)" >&2
}

# Processes whose command line holds string $1 (our socket paths): shims of our containerd.
# (The pattern comes through a file, so that grep's own command line does not match.)
pids_with_arg() {
    grep -lzxF -f <(printf '%s\n' "$1") /proc/[0-9]*/cmdline 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p' || true
}

stop_processes() {
    local dir=$1 cgroup="" p pids h
    [ -f "$dir/cgroup-parent" ] && cgroup=$(cat "$dir/cgroup-parent")
    # Containers first (a throwaway daemon: no graceful stop, which would give each running
    # container 10 s): the processes in our cgroup parent. Then dockerd, the shims of our
    # containerd, containerd.
    if [ -n "$cgroup" ]; then
        for h in /sys/fs/cgroup/pids /sys/fs/cgroup/memory /sys/fs/cgroup/unified /sys/fs/cgroup; do
            [ -d "$h$cgroup" ] || continue
            pids=$(find "$h$cgroup" -name cgroup.procs -exec cat {} + 2>/dev/null || true)
            for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
            break
        done
    fi
    stop_pidfile "$dir/dockerd.launcher.pid" 200
    stop_pidfile "$dir/docker.pid" 50
    pids=$(pids_with_arg "$dir/containerd/containerd.sock")
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    stop_pidfile "$dir/containerd/containerd.pid" 100
    for p in $pids; do wait_gone "$p" 30 || kill -KILL "$p" 2>/dev/null || true; done
    remove_cgroup_parent "$cgroup"
}

stop() {
    local dir
    dir=$(abspath "$1")
    [ -d "$dir" ] || return 0
    local croot=""
    [ -f "$dir/containerd-root" ] && croot=$(cat "$dir/containerd-root")
    stop_processes "$dir"
    umount_under "$dir"
    if [ -n "$croot" ] && [ "${croot#"$dir"/}" = "$croot" ]; then
        # A root the caller chose, outside DIR: its mounts and contents, and the directory
        # itself unless the caller mounted a filesystem there.
        umount_under "$croot"
        if [ -d "$croot" ]; then
            find "$croot" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} + 2>/dev/null ||
                echo "$prog: could not empty the containerd root $croot" >&2
            mountpoint -q "$croot" 2>/dev/null || rmdir "$croot" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir" 2>/dev/null || echo "$prog: could not remove all of $dir" >&2
}

case "${1:-}" in
start) [ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: $0 start DIR overlay2|containerd [CONTAINERD_ROOT]"; start "$2" "$3" "${4:-}" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 start DIR overlay2|containerd [CONTAINERD_ROOT] | stop DIR" ;;
esac
