# shellcheck shell=bash
# Shared by scripts/engines/*.sh (sourced, not run). Callers set `prog` (their name for
# messages) and `set -euo pipefail` before sourcing.
#
# engines_dir: where scripts/engines/fetch.sh unpacks the engines:
#   $STAGESWEEP_ENGINES_DIR, else ${CARGO_TARGET_DIR:-<repo>/target}/engines.

engines_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
engines_dir=${STAGESWEEP_ENGINES_DIR:-${CARGO_TARGET_DIR:-$engines_repo/target}/engines}
case "$engines_dir" in /*) ;; *) engines_dir=$PWD/$engines_dir ;; esac

die() {
    echo "${prog:-engines}: $*" >&2
    exit 1
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root ($1); run it with sudo"
}

# /_ping through a unix socket answers OK.
ping_socket() {
    [ "$(curl -fsS --max-time 2 --unix-socket "$1" http://localhost/_ping 2>/dev/null)" = "OK" ]
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

# The pid in file $1, when the file exists and names a live process; else nothing.
live_pid() {
    local pid=""
    [ -f "$1" ] && pid=$(cat "$1" 2>/dev/null || true)
    case "$pid" in '' | *[!0-9]*) return 0 ;; esac
    if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

# TERM the process whose pid is in file $1, KILL it after $2 tenths of a second.
stop_pidfile() {
    local pid
    pid=$(live_pid "$1")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" "$2" || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 50 || true; }
}

# Unmount everything mounted under directory $1 (not $1 itself: a filesystem a caller mounted
# there stays), deepest first (lazy: a busy mount goes once its last user does).
umount_under() {
    local d=${1%/}
    [ -r /proc/self/mounts ] || return 0
    awk -v d="$d" 'index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# Remove cgroup directories named $1 (a cgroup parent of ours, e.g. /stagesweep-x) from every
# cgroup hierarchy, deepest first; only empty ones go (rmdir), so a live cgroup stays.
remove_cgroup_parent() {
    local parent=${1#/} h
    [ -n "$parent" ] || return 0
    for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$h/$parent" ] || continue
        find "$h/$parent" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
}

# wait_until TIMEOUT PID LOG WHAT VAR CMD...: poll CMD every 0.2 s until it succeeds, for at
# most TIMEOUT seconds and while process PID lives. Else say why (WHAT names the thing, VAR the
# variable that raises TIMEOUT), print the last lines of LOG, and exit 1.
wait_until() {
    local timeout=$1 pid=$2 log=$3 what=$4 var=$5
    shift 5
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "${prog:-engines}: $what exited during start-up; last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "${prog:-engines}: $what did not come up within ${timeout}s (raise $var); last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
}
