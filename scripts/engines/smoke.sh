#!/usr/bin/env bash
# Check that a (private, throwaway) engine does what the engine tests need, through the docker
# CLI and the Engine API. Nothing is pulled: the base image is a docker-archive made here from
# Debian's busybox-static.
#
#   scripts/engines/smoke.sh DIR      DIR from docker28.sh/podman5.sh start (reads DIR/env)
#   scripts/engines/smoke.sh          with DOCKER_HOST=unix://... set (and the docker CLI,
#                                     DOCKER_CONFIG as the engine needs) in the environment
#
# Checks: /version (engine and API versions); `docker load` of a FROM-scratch busybox archive;
# `docker run --network none` (Docker only: the CLI's attach fails on Podman); a classic build
# (DOCKER_BUILDKIT=0, --network none) with RUN steps; a BuildKit build (`docker buildx build
# --network=none --load` when the CLI has buildx, else DOCKER_BUILDKIT=1 with a 20.10 CLI;
# Docker only) that must leave build cache records in /system/df; /info's storage driver and
# DriverStatus (io.containerd.snapshotter.v1 on the containerd image store); and, for a
# docker28.sh DIR, the containerd root and the space it takes.
# Its images carry the label stagesweep.smoke and are removed at the end; build cache stays.
# Needs curl, jq and /bin/busybox from busybox-static (STAGESWEEP_BUSYBOX overrides).
set -euo pipefail
prog=smoke.sh
# shellcheck source=scripts/engines/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=""
if [ "$#" -ge 1 ]; then
    dir=${1%/}
    [ -f "$dir/env" ] || die "$dir/env missing: give the DIR of a started scripts/engines/docker28.sh or podman5.sh"
    set -a
    # shellcheck disable=SC1091
    . "$dir/env"
    set +a
fi
host=${DOCKER_HOST:-}
case "$host" in unix://*) sock=${host#unix://} ;; *) die "DOCKER_HOST must be unix://SOCKET (got '${host}'): give DIR or set it" ;; esac
for c in curl jq docker; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found (apt-get install -y $c, or source the engine's DIR/env for docker)"
done
busybox=${STAGESWEEP_BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox missing: apt-get install -y busybox-static"
if ldd "$busybox" >/dev/null 2>&1; then die "$busybox is dynamically linked: install busybox-static (or set STAGESWEEP_BUSYBOX to a static busybox)"; fi

# GET $1 from the engine; fails naming the path, the status and the answer.
api() {
    local out code
    out=$(curl -sS --max-time 30 -w '\n%{http_code}' --unix-socket "$sock" "http://localhost$1") ||
        fail "GET $1: no answer"
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    [ "$code" -lt 400 ] || fail "GET $1: HTTP $code: $out"
    printf '%s\n' "$out"
}
step_t=$SECONDS
ok() { echo "$prog: ok   $* ($((SECONDS - step_t))s)"; step_t=$SECONDS; }
fail() { echo "$prog: FAIL $*" >&2; exit 1; }
# Runs "$@" with its output in $work/log; on failure shows the log's end and fails with $1.
logged() {
    local what=$1
    shift
    "$@" >"$work/log" 2>&1 || { tail -n 20 "$work/log" >&2; fail "$what"; }
}

work=$(mktemp -d "${TMPDIR:-/tmp}/stagesweep-smoke.XXXXXX")
tag=smoke$$
cleanup() {
    docker rmi "$tag-bk:1" "$tag-classic:1" "$tag-bb:latest" >/dev/null 2>&1 || true
    docker image prune -f --filter "label=stagesweep.smoke=$tag" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# ---- the engine -------------------------------------------------------------------------
ping_headers=$(curl -fsS --max-time 5 -D - -o /dev/null --unix-socket "$sock" http://localhost/_ping) ||
    fail "no answer to /_ping on $sock"
engine=docker
if grep -qi '^Libpod-Api-Version:' <<<"$ping_headers"; then engine=podman; fi
version=$(api /version)
ok "engine: $engine $(jq -r '.Version' <<<"$version"), API $(jq -r '.ApiVersion' <<<"$version") (min $(jq -r '.MinAPIVersion' <<<"$version")), $(jq -r '[.Components[]? | "\(.Name) \(.Version | split("\n")[0])"] | join(", ")' <<<"$version")"
cli=$(docker version --format '{{.Client.Version}} (API {{.Client.APIVersion}})' 2>/dev/null) || fail "docker version failed"
ok "cli: $(command -v docker) $cli"

# ---- a busybox base image from a docker-archive ------------------------------------------
mkdir -p "$work/rootfs/bin" "$work/archive"
cp "$busybox" "$work/rootfs/bin/busybox"
ln -s busybox "$work/rootfs/bin/sh"
tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/rootfs" -cf "$work/layer.tar" bin
layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$work/archive/$layer"
mv "$work/layer.tar" "$work/archive/$layer/layer.tar"
printf '{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","config":{"Cmd":["/bin/sh"],"Labels":{"stagesweep.smoke":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2026-01-01T00:00:00Z","created_by":"smoke.sh: busybox-static"}]}' \
    "$tag" "$layer" >"$work/config.json"
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/archive/$config.json"
printf '[{"Config":"%s.json","RepoTags":["%s-bb:latest"],"Layers":["%s/layer.tar"]}]' "$config" "$tag" "$layer" \
    >"$work/archive/manifest.json"
tar -C "$work/archive" -cf "$work/bb.tar" .
logged "docker load of a busybox docker-archive" docker load -i "$work/bb.tar"
created=$(docker image inspect --format '{{.Created}}' "$tag-bb:latest") || fail "the loaded image is not there"
ok "load: $tag-bb:latest (Created $created, as set in the archive)"

if [ "$engine" = docker ]; then
    out=$(docker run --rm --network none "$tag-bb:latest" /bin/busybox echo hello) || fail "docker run --network none"
    [ "$out" = hello ] || fail "docker run printed '$out'"
    ok "run: docker run --rm --network none"
fi

# ---- builds ------------------------------------------------------------------------------
mkdir -p "$work/ctx"
cat >"$work/ctx/Dockerfile" <<EOF
FROM $tag-bb:latest AS builder
LABEL stage=builder
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN dd if=/dev/zero of=/big bs=1M count=2 2>/dev/null && echo built >/out
FROM $tag-bb:latest
COPY --from=builder /out /out
LABEL stagesweep.smoke=$tag
EOF
logged "classic build (DOCKER_BUILDKIT=0 docker build --network none) with RUN steps" \
    env DOCKER_BUILDKIT=0 docker build --network none -t "$tag-classic:1" "$work/ctx"
# Counted here: the CLI's repeated --filter label=... is AND on Docker, OR on Podman.
n=$(api '/images/json?all=1' | jq --arg t "$tag" '[.[] | select(.Labels["stage"] == "builder" and .Labels["stagesweep.smoke"] == $t and ((.RepoTags // []) - ["<none>:<none>"] | length) == 0)] | length')
ok "classic build: $tag-classic:1, $n untagged stage=builder images"

if [ "$engine" = docker ]; then
    echo "RUN echo $tag >/bk" >>"$work/ctx/Dockerfile"
    if docker buildx version >/dev/null 2>&1; then
        how="docker buildx build --network=none --load"
        logged "$how" docker buildx build --network=none --load -t "$tag-bk:1" "$work/ctx"
    else
        how="DOCKER_BUILDKIT=1 docker build --network none (no buildx plugin)"
        logged "$how" env DOCKER_BUILDKIT=1 docker build --network none -t "$tag-bk:1" "$work/ctx"
    fi
    # Right after a BuildKit build, /system/df on the containerd store sometimes answers 404
    # "snapshot <id>-view does not exist" (4 of 23 runs beside four other busy engines; reported:
    # docker/for-mac#6509, moby/buildkit#3599): a client must retry it.
    for try in 1 2 3 4 5; do
        if df=$(api /system/df 2>"$work/df.err"); then break; fi
        echo "$prog: note: /system/df failed (try $try): $(cat "$work/df.err")" >&2
        [ "$try" -lt 5 ] || fail "/system/df kept failing"
        sleep 0.5
    done
    records=$(jq '.BuildCache // [] | length' <<<"$df")
    [ "$records" -gt 0 ] || fail "no build cache record in /system/df after a BuildKit build ($how)"
    ok "BuildKit build: $how; /system/df: $records build cache records"
    docker system df | sed 's/^/    /'
fi

# ---- the store ---------------------------------------------------------------------------
info=$(api /info)
driver=$(jq -r '.Driver' <<<"$info")
status=$(jq -c '.DriverStatus' <<<"$info")
store=graphdriver
if jq -e '.DriverStatus // [] | any(.[0] == "driver-type" and .[1] == "io.containerd.snapshotter.v1")' <<<"$info" >/dev/null; then
    store="containerd image store"
fi
ok "store: $store, Driver $driver, DriverStatus $status, DockerRootDir $(jq -r '.DockerRootDir' <<<"$info")"
if [ -n "$dir" ] && [ -f "$dir/containerd-root" ]; then
    croot=$(cat "$dir/containerd-root")
    ok "containerd root: $croot ($(du -sh "$croot" 2>/dev/null | cut -f1) used; filesystem $(df -P "$croot" | awk 'NR == 2 { print $1 " on " $6 }'))"
fi
echo "$prog: all checks passed on $engine $(jq -r '.Version' <<<"$version") at $host"
