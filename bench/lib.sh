# Shared by bench/*.sh: tools, release build, timing helpers. Source it; needs bash.

die() {
    echo "bench: $*" >&2
    exit 1
}

# Install what the scripts use (as root, with Debian's apt) when missing.
need_tools() {
    local need=()
    [ -x /usr/bin/time ] || need+=(time)
    command -v jq >/dev/null 2>&1 || need+=(jq)
    command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
    if [ "${#need[@]}" -gt 0 ]; then
        echo "bench: installing ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 </dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2 </dev/null
    fi
}

# Build stagesweep and the engine_tool bench helper in release; sets STAGESWEEP and TOOL.
build_release() {
    echo "bench: cargo build --release (stagesweep, engine_tool)" >&2
    cargo build --release --locked --bin stagesweep >&2
    TOOL=$(cargo build --release --locked --bench engine_tool --message-format=json 2>/dev/null |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "engine_tool") | .executable' |
        tail -n 1)
    [ -x "$TOOL" ] || die "could not find the engine_tool executable"
    STAGESWEEP=$PWD/target/release/stagesweep
    [ -x "$STAGESWEEP" ] || die "no $STAGESWEEP after the build"
}

# Median of the numbers on stdin.
median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan" } else if (NR % 2) { print a[(NR + 1) / 2] } else { print (a[NR / 2] + a[NR / 2 + 1]) / 2 } }'
}

# Seconds since the epoch, with nanoseconds.
now_s() {
    date +%s.%N
}

# A private engine for a bench, in DIR (keep it short: unix socket paths): `docker20`
# (Debian's dockerd 20.10, scripts/dockerd.sh), `docker28` (Docker 28.5 on overlay2) or
# `docker28-containerd` (Docker 28.5 on the containerd image store; both fetched from Debian
# sid when missing, scripts/engines/). Exports DOCKER_HOST and sets DOCKER_CLI to that
# engine's own CLI (for 28.5 with buildx: DOCKER_CONFIG and PATH from DIR/env).
engine_start() { # ENGINE DIR
    local engine=$1 dir=$2
    case $engine in
    docker20)
        DOCKER_HOST=$(scripts/dockerd.sh start "$dir")
        DOCKER_CLI=/usr/bin/docker
        [ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker) || die "no docker CLI (apt-get install docker.io)"
        ;;
    docker28 | docker28-containerd)
        scripts/engines/fetch.sh docker28 >&2 || die "scripts/engines/fetch.sh docker28 failed"
        local store=overlay2
        [ "$engine" = docker28 ] || store=containerd
        DOCKER_HOST=$(scripts/engines/docker28.sh start "$dir" "$store")
        set -a
        # shellcheck disable=SC1091
        . "$dir/env"
        set +a
        DOCKER_CLI=$dir/bin/docker
        ;;
    *) die "--engine $engine: docker20, docker28 or docker28-containerd" ;;
    esac
    export DOCKER_HOST
}

engine_stop() { # ENGINE DIR
    case $1 in
    docker20) scripts/dockerd.sh stop "$2" ;;
    *) scripts/engines/docker28.sh stop "$2" ;;
    esac
}

# A fake Engine API (`engine_tool serve`) with N synthetic images on DIR/fake-N.sock, in the
# background, for at most MAX_SECS; further arguments go to `serve`. Sets `sock` and `server`
# (stop it with fake_engine_stop); its stderr goes to DIR/serve.log.
fake_engine_start() { # N DIR MAX_SECS [serve args...]
    local n=$1 dir=$2 max=$3
    shift 3
    sock=$dir/fake-$n.sock
    rm -f "$sock" # a killed fake leaves its socket behind
    "$TOOL" serve --socket "$sock" --images "$n" --max-secs "$max" "$@" 2>"$dir/serve.log" &
    server=$!
    for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || die "the fake engine did not start; see $dir/serve.log"
}

fake_engine_stop() {
    [ -n "${server:-}" ] || return 0
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
}
