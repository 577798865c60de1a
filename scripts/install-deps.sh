#!/usr/bin/env bash
# Install the Debian packages the test suite needs (scripts/debian-packages.txt) when they are
# missing, then the cargo tools it needs (cargo-deb, for scripts/package.sh). Run by
# scripts/test.sh and .ci/run; does nothing when all are present.
#
# Installing needs root and apt-get. Without them it names the missing packages and the
# command that installs them, and fails. Package scripts are kept from starting services
# (docker, prometheus) during the install. Waits up to 10 minutes for another apt/dpkg run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
list="$root/scripts/debian-packages.txt"

missing=()
while read -r package command _; do
    case "$package" in "" | \#*) continue ;; esac
    if [ -n "${command:-}" ]; then
        command -v "$command" >/dev/null 2>&1 && continue
    elif dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
        continue
    fi
    missing+=("$package")
done <"$list"

install_packages() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps.sh: missing Debian packages: ${missing[*]}" >&2
        echo "install-deps.sh: install them as root: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "install-deps.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    policy=/usr/sbin/policy-rc.d
    added_policy=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        added_policy=true
    fi
    remove_policy() { if $added_policy; then rm -f "$policy"; fi; }
    trap remove_policy EXIT
    lock_wait=(-o DPkg::Lock::Timeout=600)
    apt-get "${lock_wait[@]}" update -q </dev/null
    apt-get "${lock_wait[@]}" install -y -q "${missing[@]}" </dev/null
}

[ "${#missing[@]}" -eq 0 ] || install_packages

# scripts/package.sh builds the .deb with cargo-deb (tests/package/package.rs); pinned, from crates.io.
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "install-deps.sh: cargo install cargo-deb"
    cargo install cargo-deb --version 3.8.0 --locked
fi
