#!/usr/bin/env bash
# Build soak: does a build host stay bounded under the agent? N builds of a two-stage
# Dockerfile (a `stage=builder` stage, then a final stage whose steps hold the app's
# dependencies), alternating classic builds under `stagesweep hold` and BuildKit builds, a
# container kept running on build 1, and the agent with the shipped default configuration
# (config/default.yaml: builder stages, stale build cache) plus one rule for the tagged app
# images (`soak/app:*`, keep_last 3), its durations scaled to the soak. On a private engine
# (needs root) whose whole data directory is a filesystem of its own (an ext4 image on a loop
# device), so that the filesystem's usage is the engine's alone. Where no loop device can be
# had (some containers), the engine's directory on the host's filesystem, measured with du.
#
#   bench/build-soak.sh [--engine docker20|docker28] [--builds N] [--interval SECS]
#                       [--tunables on|off|both] [--build-history short|engine] [--out DIR]
#                       [--assert | --assert-safety]
#                       [--debug]
#
# --engine    docker20: Debian's dockerd 20.10 (scripts/dockerd.sh, overlay2), BuildKit builds
#             with Debian's CLI and DOCKER_BUILDKIT=1; docker28: Docker 28.5 with the
#             containerd image store (scripts/engines/docker28.sh; fetched when missing),
#             BuildKit builds with its CLI and buildx. Default docker20.
# --builds    how many builds (default 120)
# --interval  seconds from one build's start to the next (default 10; a longer build starts
#             the next at once). The soak's clock: builder stages min_age 3 intervals (30s),
#             app images min_age 6 (1m), build cache unused_for 12 (2m), a pass every 2 (20s),
#             a deferred pass checks the build lock again every interval (builds.retry 10s, the
#             shipped value); everything else as shipped.
# --tunables  the agent's GLIBC_TUNABLES (those of systemd/stagesweep.service): on, off, or
#             both (two agents side by side, one with and one without, taking turns through
#             the pass lock). Default on.
# --assert    exit 1 when a build failed, a pass failed, the engine deleted or untagged an
#             image no policy allows (from its event stream), the running container's image or
#             one of its parents is gone, or a sample still grows in the last third: its median
#             over the last third above the middle third's by more than 10 % (and a floor:
#             3 images, 2 MiB, 512 KiB of RSS, 4 fds)
# --assert-safety  exit 1 on the same, except growth (which the summary still shows): for an
#             engine whose build cache climbs for long (Docker 28.5's containerd store reports
#             records `Shared: true` that no image holds; stagesweep deletes them only beyond
#             one per image at each depth of the record tree, `unheld_shared`)
# --build-history short|engine  docker28: how long BuildKit keeps its build records (one per
#             BuildKit build: its logs, trace and provenance, ≈ 185 KB each here, in containerd's
#             content store). BuildKit deletes a record only when it is both beyond the newest
#             `maxEntries` and older than `maxAge` (checked every 2 minutes); the engine's own
#             defaults are 50 and 48 h, so every record of the last two days stays, and no
#             Engine API manages them (`docker buildx history rm` does; stagesweep does not).
#             short (default): daemon.json `builder.history` maxEntries 10, maxAge 1m, so that
#             a soak reaches the steady state; engine: the engine as shipped (the disk then
#             grows by one record per BuildKit build for the whole soak).
# --debug     use the debug build (CI: already built by the tests) instead of a release build
# STAGESWEEP_SOAK_FS=SIZE sizes the engine's filesystem (default 8G, sparse); `none` measures
# the engine's directory with du instead, as when no loop device can be had.
# STAGESWEEP_SOAK_WRAP=CMD runs each agent under CMD (e.g. `heaptrack -o DIR/h`; the samples
# then show CMD's process, not the agent's).
# Writes DIR/samples.tsv, builds.tsv, events.jsonl, registry.jsonl, summary.md (default: a new
# temp dir). Figures: BENCHMARKS.md (4b, "Build soak").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

engine=docker20
builds=120
build_history=short
interval=10
tunables_mode=on
out=""
check=false
check_growth=true
profile=release
while [ $# -gt 0 ]; do
    case $1 in
    --engine) engine=$2; shift 2 ;;
    --builds) builds=$2; shift 2 ;;
    --build-history) build_history=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --tunables) tunables_mode=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --assert) check=true; shift ;;
    --assert-safety) check=true; check_growth=false; shift ;;
    --debug) profile=debug; shift ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
case $engine in docker20 | docker28) ;; *) die "--engine $engine: docker20 or docker28" ;; esac
case $tunables_mode in on | off | both) ;; *) die "--tunables $tunables_mode: on, off or both" ;; esac
[[ $builds =~ ^[0-9]+$ && $builds -ge 6 ]] || die "--builds $builds: at least 6"
[[ $interval =~ ^[0-9]+$ && $interval -ge 1 ]] || die "--interval $interval: whole seconds, at least 1"
[ "$(id -u)" -eq 0 ] || die "must run as root (it starts its own engine and mounts its filesystem)"
need_tools
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is missing or dynamic: apt-get install -y busybox-static"
fi
if [ "$profile" = release ]; then
    echo "bench: cargo build --release (stagesweep)" >&2
    cargo build --release --locked --bin stagesweep >&2
else
    echo "bench: cargo build (debug: stagesweep)" >&2
    cargo build --locked --bin stagesweep >&2
fi
STAGESWEEP=$PWD/target/$profile/stagesweep
[ -x "$STAGESWEEP" ] || die "no $STAGESWEEP after the build"
unit_tunables=$(sed -n 's/^Environment=GLIBC_TUNABLES=//p' systemd/stagesweep.service)
[ -n "$unit_tunables" ] || die "systemd/stagesweep.service sets no GLIBC_TUNABLES"

work=$(mktemp -d /tmp/bs.XXXXXX)
out=${out:-$work/out}
mkdir -p "$out"
mnt=$work/m
dir=$mnt/e
pids=()
cleanup() {
    local rc=$?
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -d "$dir" ]; then
        if [ "$engine" = docker20 ]; then
            scripts/dockerd.sh stop "$dir" >/dev/null 2>&1 || true
        else
            scripts/engines/docker28.sh stop "$dir" >/dev/null 2>&1 || true
        fi
    fi
    if mountpoint -q "$mnt"; then umount "$mnt" 2>/dev/null || true; fi
    rm -f "$work/fs.img"
    echo "bench: results in $out (work dir $work)" >&2
    exit "$rc"
}
trap cleanup EXIT

# The engine's own filesystem: an ext4 image (sparse) on a loop device, else (no mkfs.ext4,
# no loop device) a directory whose size du measures.
mkdir -p "$mnt"
own_fs=false
if [ "${STAGESWEEP_SOAK_FS:-8G}" != none ] && command -v mkfs.ext4 >/dev/null 2>&1 && truncate -s "${STAGESWEEP_SOAK_FS:-8G}" "$work/fs.img" &&
    mkfs.ext4 -q -F "$work/fs.img" && mount -o loop "$work/fs.img" "$mnt"; then
    own_fs=true
else
    echo "bench: no filesystem of its own (mkfs.ext4 or a loop device missing): fs_used_bytes is du of the engine's directory" >&2
    rm -f "$work/fs.img"
fi
if [ "$engine" = docker20 ]; then
    DOCKER_HOST=$(scripts/dockerd.sh start "$dir")
    export DOCKER_HOST
    cli=/usr/bin/docker
    [ -x "$cli" ] || die "no $cli (apt-get install -y docker.io)"
    classic=(env DOCKER_BUILDKIT=0 "$cli" build --network none -q)
    buildkit=(env DOCKER_BUILDKIT=1 "$cli" build --network none -q)
else
    scripts/engines/fetch.sh docker28 >&2
    case $build_history in
    short) history_config='{"builder":{"history":{"maxEntries":10,"maxAge":"1m"}}}' ;;
    engine) history_config="" ;;
    *) die "--build-history $build_history: short or engine" ;;
    esac
    STAGESWEEP_DOCKERD_CONFIG=$history_config scripts/engines/docker28.sh start "$dir" containerd >/dev/null
    set -a
    # shellcheck disable=SC1091 # written by docker28.sh
    . "$dir/env"
    set +a
    cli=$dir/bin/docker
    classic=(env DOCKER_BUILDKIT=0 "$cli" build --network none -q)
    buildkit=("$cli" buildx build --network=none --load -q)
fi
sock=${DOCKER_HOST#unix://}
api() { curl -fsS --max-time 120 --unix-socket "$sock" "http://localhost$1"; }
# The same, tried again for up to 10 s: listings on the containerd store sometimes answer 404
# for a snapshot that a build just removed, and 20.10 refuses a second /system/df while one
# runs. A sample whose listings still fail is skipped (and counted), not fatal.
api_again() {
    local _
    for _ in $(seq 1 20); do
        api "$1" 2>/dev/null && return 0
        sleep 0.5
    done
    api "$1"
}
api /_ping >/dev/null || die "the engine does not answer on $sock"
data_root=$(api /info | jq -r .DockerRootDir)

# Every image event, from now on (the daemon keeps only its last 256).
curl -sSN --unix-socket "$sock" \
    'http://localhost/events?filters=%7B%22type%22%3A%5B%22image%22%5D%7D' >"$out/events.jsonl" &
pids+=($!)

# The base: FROM scratch + a static busybox.
mkdir -p "$work/base"
cp "$busybox" "$work/base/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' >"$work/base/Dockerfile"
"${classic[@]}" -t soak-base:1 "$work/base" >/dev/null

# The configuration: config/default.yaml with the soak's clock and private paths, and the
# app images' rule first.
builder_min_age=$((3 * interval))s
app_min_age=$((6 * interval))s
cache_unused=$((12 * interval))s
every=$((2 * interval))s
retry=${interval}s
agents=()
case $tunables_mode in
on) agents=(on) ;;
off) agents=(off) ;;
both) agents=(on off) ;;
esac
port_base=$((20000 + RANDOM % 20000))
configure() { # configure NAME PORT > config
    awk -v bma="$builder_min_age" -v cu="$cache_unused" -v every="$every" -v work="$work" -v retry="$retry" \
        -v name="$1" -v port="$2" -v ama="$app_min_age" '
        /^policies:$/ {
            print
            print "  - name: soak-apps"
            print "    match:"
            print "      references: [\"soak/app:*\"]"
            print "    min_age: " ama
            print "    keep_last: 3"
            next
        }
        /^    min_age: 1h$/ { print "    min_age: " bma; n["min_age"]++; next }
        /^    unused_for: 7d$/ { print "    unused_for: " cu; n["unused_for"]++; next }
        /^schedule: / { print "schedule: \"@every " every "\""; n["schedule"]++; next }
        /^lock_file: / { print "lock_file: " work "/pass.lock"; n["lock_file"]++; next }
        /^  path: \/var\/lib\/stagesweep\/history.json$/ { print "  path: " work "/history-" name ".json"; n["history"]++; next }
        /^  listen: / { print "  listen: 127.0.0.1:" port; n["listen"]++; next }
        /^  lock_file: \/run\/stagesweep\/builds.lock$/ { print "  lock_file: " work "/builds.lock"; n["builds"]++; next }
        /^  retry: 10s$/ { print "  retry: " retry; n["retry"]++; next }
        { print }
        END {
            split("min_age unused_for schedule lock_file history listen builds retry", want, " ")
            for (k in want) if (n[want[k]] != 1) { print "config/default.yaml changed: no single " want[k] " line to set" > "/dev/stderr"; exit 1 }
        }' config/default.yaml
}
agent_pid=()
agent_port=()
k=0
for a in "${agents[@]}"; do
    port=$((port_base + k))
    configure "$a" "$port" >"$work/agent-$a.yaml"
    "$STAGESWEEP" check-config --config "$work/agent-$a.yaml" >"$out/check-config-$a.txt" 2>&1 ||
        die "the soak's configuration is invalid: $(cat "$out/check-config-$a.txt")"
    if [ "$a" = on ]; then t=$unit_tunables; else t=""; fi
    # shellcheck disable=SC2086 # a command line, split on purpose
    GLIBC_TUNABLES=$t RUST_LOG=stagesweep=info ${STAGESWEEP_SOAK_WRAP:-} "$STAGESWEEP" agent \
        --config "$work/agent-$a.yaml" 2>"$out/agent-$a.log" &
    agent_pid+=($!)
    pids+=($!)
    agent_port+=("$port")
    k=$((k + 1))
done
cp "$work/agent-${agents[0]}.yaml" "$out/agent.yaml"

# A build: a builder stage, then a final stage whose steps are the app's dependencies.
build() { # build N MODE
    local n=$1 mode=$2 ctx=$work/ctx-$1
    mkdir -p "$ctx"
    printf 'source of build %s\n' "$n" >"$ctx/src.txt"
    printf 'dependencies of build %s\n' "$n" >"$ctx/package.txt"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM soak-base:1 AS builder
LABEL stage=builder
COPY src.txt /src/src.txt
RUN head -c 262144 /dev/urandom > /dist.bin && cat /src/src.txt >> /dist.bin
RUN echo built > /done

FROM soak-base:1
COPY package.txt /app/package.txt
RUN head -c 262144 /dev/urandom > /app/deps.bin
COPY --from=builder /dist.bin /app/dist.bin
EOF
    if [ "$mode" = classic ]; then
        "$STAGESWEEP" hold --lock-file "$work/builds.lock" -- "${classic[@]}" -t "soak/app:$n" "$ctx"
    else
        "${buildkit[@]}" -t "soak/app:$n" "$ctx"
    fi >"$work/build-$n.log" 2>&1
    local rc=$?
    rm -rf "$ctx"
    return "$rc"
}

# The image registry: every image seen (ID, parent, tags, stage label), polled with the
# samples, to judge the engine's delete events afterwards.
register() {
    api_again '/images/json?all=1' >"$work/listing.json" || return 1
    jq -c '.[] | {id: .Id, parent: (.ParentId // ""),
        tags: ([(.RepoTags // [])[], (.RepoDigests // [])[]] - ["<none>:<none>", "<none>@<none>"]),
        stage: (.Labels // {} | .stage // "")}' "$work/listing.json" >"$work/listed.jsonl" || return 1
    touch "$out/registry.jsonl"
    grep -vxFf "$out/registry.jsonl" "$work/listed.jsonl" >"$work/new.jsonl" || true
    cat "$work/new.jsonl" >>"$out/registry.jsonl"
}

df_json() { # /system/df, or {} when it keeps failing (the sample then shows no build cache)
    api_again /system/df 2>/dev/null || echo '{}'
}

metric_sum() { # PORT FAMILY: the sum of a metric family's samples
    curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk -v m="$2" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'
}

status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

sample() { # one line of samples.tsv
    local t=$1 df images apps cache records shared used bk line a
    df=$(df_json)
    images=$(api_again '/images/json?all=1' | jq length) || return 1
    apps=$(api_again '/images/json' | jq '[.[] | select(any((.RepoTags // [])[]; startswith("soak/app:")))] | length') || return 1
    cache=$(jq '[.BuildCache // [] | .[].Size] | add // 0' <<<"$df")
    records=$(jq '.BuildCache // [] | length' <<<"$df")
    shared=$(jq '[.BuildCache // [] | .[] | select(.Shared)] | length' <<<"$df")
    if $own_fs; then
        used=$(df -B1 --output=used "$mnt" | tail -n 1 | tr -d ' ')
    else # files come and go under du: take what it counted
        used=$({ du -sbx "$dir" 2>/dev/null || true; } | cut -f1)
        used=${used:-0}
    fi
    bk=$(du -sb "$data_root/buildkit" 2>/dev/null | cut -f1 || echo 0)
    line="$t	$(cat "$work/built")	$images	$apps	$cache	$records	$shared	$bk	$used"
    for k in "${!agents[@]}"; do
        a=${agent_pid[$k]}
        line="$line	$(status_kib "$a" VmRSS)	$(status_kib "$a" RssAnon)	$(status_kib "$a" RssFile)	$(ls "/proc/$a/fd" | wc -l)	$(metric_sum "${agent_port[$k]}" 'stagesweep_passes_total{')	$(metric_sum "${agent_port[$k]}" 'stagesweep_passes_total{result="failure"}')"
    done
    printf '%s\n' "$line"
}

header="secs	builds	images	apps	cache_bytes	cache_records	cache_shared	buildkit_dir_bytes	fs_used_bytes"
for a in "${agents[@]}"; do
    header="$header	rss_kib_$a	anon_kib_$a	file_kib_$a	fds_$a	passes_$a	failures_$a"
done
printf '%s\n' "$header" >"$out/samples.tsv"
printf 'build\tmode\trc\tsecs\n' >"$out/builds.tsv"
echo 0 >"$work/built"

# The builds, in the background: odd ones classic under hold, even ones BuildKit.
(
    for n in $(seq 1 "$builds"); do
        t0=$SECONDS
        if [ $((n % 2)) -eq 1 ]; then mode=classic; else mode=buildkit; fi
        rc=0
        build "$n" "$mode" || rc=$?
        printf '%s\t%s\t%s\t%s\n' "$n" "$mode" "$rc" "$((SECONDS - t0))" >>"$out/builds.tsv"
        [ "$rc" -eq 0 ] || cp "$work/build-$n.log" "$out/build-$n.failed.log"
        rm -f "$work/build-$n.log"
        if [ "$n" -eq 1 ] && [ "$rc" -eq 0 ]; then
            "$cli" run -d --network none --name soak-running soak/app:1 /bin/sleep 100000000 >/dev/null
        fi
        echo "$n" >"$work/built"
        left=$((t0 + interval - SECONDS))
        [ "$left" -le 0 ] || sleep "$left"
    done
) &
builder=$!
pids+=("$builder")

started=$SECONDS
running_chain=""
skipped=0
check_agents() {
    local k
    for k in "${!agents[@]}"; do
        kill -0 "${agent_pid[$k]}" 2>/dev/null ||
            die "agent ${agents[$k]} died; log: $out/agent-${agents[$k]}.log"
    done
}
take_sample() { # register the images, then append one sample (or count it skipped)
    local line
    check_agents
    if register && line=$(sample $((SECONDS - started))); then
        printf '%s\n' "$line" >>"$out/samples.tsv"
        printf '%s\n' "$line" >&2
    else
        skipped=$((skipped + 1))
        echo "bench: sample skipped (the engine's listings kept failing)" >&2
    fi
}
# Where the engine's bytes are (`du` of the blocks, three levels down its directory) and how many build
# records BuildKit keeps (its build history: logs, traces and provenance, which it bounds by
# count and age itself, not `/build/prune`): at a third and two thirds of the builds and at
# the end, so that the summary can say which directories grew over the last third.
dirs_snapshot() { # NAME
    { du -x --block-size=1 -d 3 "$dir" 2>/dev/null || true; } | LC_ALL=C sort -k 2 >"$out/dirs-$1.tsv"
    if [ "$engine" != docker20 ]; then
        { "$cli" buildx history ls --format '{{.Ref}}' 2>/dev/null || true; } | wc -l >"$out/build-records-$1.txt"
    fi
}
snapshots=0
while kill -0 "$builder" 2>/dev/null; do
    take_sample
    done_builds=$(cat "$work/built")
    if [ "$snapshots" -lt 2 ] && [ $((3 * done_builds)) -ge $(((snapshots + 1) * builds)) ]; then
        snapshots=$((snapshots + 1))
        dirs_snapshot "third-$snapshots"
    fi
    if [ -z "$running_chain" ] && [ -s "$work/listing.json" ] &&
        id=$(api /containers/soak-running/json 2>/dev/null | jq -r .Image) && [ -n "$id" ]; then
        # The running container's image and its parents, as the engine listed them just now.
        running_chain=$(jq -r --arg id "$id" '
            (map({key: .Id, value: (.ParentId // "")}) | from_entries) as $p
            | [$id] | until((.[-1] | $p[.] // "") == ""; . + [$p[.[-1]]]) | .[]' "$work/listing.json") ||
            running_chain=""
        printf '%s\n' "$running_chain" >"$out/running-chain.txt"
    fi
    sleep 5
done
wait "$builder" || true
take_sample
dirs_snapshot end
for p in "${agent_pid[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
sleep 1
kill -TERM "${pids[0]}" 2>/dev/null || true # the event stream

# ---- the verdicts ----
fail=""
failed_builds=$(awk -F'\t' 'NR > 1 && $3 != 0' "$out/builds.tsv" | wc -l)
[ "$failed_builds" -eq 0 ] || fail="$fail $failed_builds builds failed (logs: $out/build-*.failed.log);"

# Deletions and untags outside the policies: an image may go when it carried stage=builder
# (builder-stages), a soak/app:* tag (soak-apps), or was an untagged parent of one that went.
jq -s '[.[] | select(.Type == "image" and (.Action == "delete" or .Action == "untag"))
        | {action: .Action, id: .Actor.ID, name: (.Actor.Attributes.name // "")}]' \
    "$out/events.jsonl" >"$work/removals.json"
# The containerd store lists an image being created under its own ID as a name, without
# its parent, for a moment: that name is no tag, and that parent is not the image's.
jq -s 'map(.tags |= map(select(startswith("sha256:") | not)))
       | reduce .[] as $r ({}; .[$r.id] = ((.[$r.id] // $r)
           | .parent = (if .parent == "" then $r.parent else .parent end)
           | .tags = ((.tags + $r.tags) | unique)))' \
    "$out/registry.jsonl" >"$work/registry.json"
jq -n --slurpfile reg "$work/registry.json" --slurpfile rm "$work/removals.json" '
    $reg[0] as $r | $rm[0] as $ev
    | ([$ev[] | select(.action == "delete") | {key: .id, value: true}] | from_entries) as $del
    | (reduce ($r[] | select(.parent != "")) as $i ({}; .[$i.parent] += [$i.id])) as $kids
    | def selected($id): ($r[$id] // {}) as $i
        | ($i.stage == "builder") or any(($i.tags // [])[]; test("(^|/)soak/app:"));
      def allowed($id): selected($id)
        or ((($r[$id] // {tags: ["?"]}).tags | map(select(startswith("sha256:") | not))
             | length) == 0
            and any(($kids[$id] // [])[]; $del[.] == true and allowed(.)));
    [ $ev[]
      | if (.id | startswith("sha256:")) then
            select(allowed(.id) | not) | "\(.action) \(.id): \($r[.id] // "never listed" | tostring)"
        else select(.id | test("(^|/)soak/app:") | not) | "\(.action) \(.id)"
        end ]' >"$out/outside-policy.json"
outside=$(jq length "$out/outside-policy.json")
deletions=$(jq '[.[] | select(.action == "delete")] | length' "$work/removals.json")
[ "$outside" -eq 0 ] || fail="$fail $outside deletions or untags outside the policies ($out/outside-policy.json);"

# The running container's image and its parents are all still there.
missing=0
if [ -n "$running_chain" ]; then
    present=$(api_again '/images/json?all=1' | jq -r '.[].Id') || present=""
    for id in $running_chain; do grep -qxF "$id" <<<"$present" || missing=$((missing + 1)); done
    running=$(api /containers/soak-running/json | jq -r .State.Running)
else
    missing=-1 running=false
fi
[ "$missing" -eq 0 ] && [ "$running" = true ] ||
    fail="$fail the running container's image chain lost $missing images (running: $running);"

# Growth: the median of each column over the last third against the middle third.
growth=$(awk -F'\t' '
    function median(col, lo, hi,   i, j, m, x, a) {
        m = 0
        for (i = 1; i <= n; i++) if (t[i] >= lo && t[i] < hi) {
            x = v_[i, col] + 0
            for (j = m; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
            a[j + 1] = x
            m++
        }
        if (m == 0) return 0
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    NR == 1 { for (c = 1; c <= NF; c++) name[c] = $c; cols = NF; next }
    { n++; t[n] = $1; for (c = 1; c <= NF; c++) v_[n, c] = $c }
    END {
        T = t[n] + 1
        for (c = 3; c <= cols; c++) {
            col = name[c]
            if (col ~ /^(passes|failures|cache_shared|builds)/) continue
            floor = 0
            if (col == "images" || col == "apps" || col == "cache_records") floor = 3
            else if (col ~ /bytes$/) floor = 2 * 1048576
            else if (col ~ /_kib_/) floor = 512
            else if (col ~ /^fds_/) floor = 4
            first = median(c, 0, T / 3); mid = median(c, T / 3, 2 * T / 3); last = median(c, 2 * T / 3, T)
            verdict = (last > mid * 1.10 + floor) ? "GROWS" : "flat"
            printf "%s\t%.0f\t%.0f\t%.0f\t%s\n", col, first, mid, last, verdict
        }
    }' "$out/samples.tsv")
printf '%s\n' "$growth" >"$out/growth.tsv"
grows=$(awk -F'\t' '$5 == "GROWS" { printf " %s", $1 }' <<<"$growth")
if [ -n "$grows" ] && $check_growth; then fail="$fail still growing in the last third:$grows;"; fi
cache_note=""
if grep -q '^cache_bytes	.*GROWS' <<<"$growth"; then
    last_shared=$(tail -n 1 "$out/samples.tsv" | cut -f7)
    last_records=$(tail -n 1 "$out/samples.tsv" | cut -f6)
    cache_note="**The build cache still grows** ($last_shared of its $last_records records report \`Shared: true\`, which the default rule (\`shared: exclude\`) keeps)."
fi
passes_failed=0
for k in "${!agents[@]}"; do
    col=$((9 + 6 * k + 6))
    f=$(tail -n 1 "$out/samples.tsv" | cut -f"$col")
    passes_failed=$((passes_failed + ${f%.*}))
done
[ "$passes_failed" -eq 0 ] || fail="$fail $passes_failed passes failed;"

# Memory over an hour: the median RSS of the last 10 minutes against minutes 10 to 20.
memory=""
secs=$(tail -n 1 "$out/samples.tsv" | cut -f1)
if [ "$secs" -ge 1800 ]; then
    for k in "${!agents[@]}"; do
        col=$((10 + 6 * k))
        memory="$memory$(awk -F'\t' -v c="$col" -v T="$secs" -v name="${agents[$k]}" '
            function put(a, m, x,   j) { for (j = m; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
            function med(a, m) { return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
            NR > 1 && $1 >= 600 && $1 < 1200 { put(e, ne, $c + 0); ne++ }
            NR > 1 && $1 >= T - 600 { put(l, nl, $c + 0); nl++ }
            END { a = med(e, ne); b = med(l, nl); printf "| RSS median, minutes 10-20 → last 10 (tunables %s) | %.1f → %.1f MiB (%+.1f %%) |\n", name, a / 1024, b / 1024, 100 * (b - a) / a }' "$out/samples.tsv")"$'\n'
    done
fi

built=$(awk -F'\t' 'NR > 1' "$out/builds.tsv" | wc -l)
last=$(tail -n 1 "$out/samples.tsv")
{
    echo "| build soak ($engine, $built builds every ${interval}s, agent every $every, tunables $tunables_mode) | value |"
    echo "|---|---|"
    echo "| builds failed | $failed_builds of $built |"
    echo "| image deletions seen in the engine's events / outside the policies | $deletions / $outside |"
    echo "| running container's image chain | $(wc -w <<<"$running_chain") images, $missing missing, running $running |"
    echo "| passes failed | $passes_failed |"
    echo "| samples skipped (listings failing for 10 s) | $skipped |"
    printf '%s' "$memory"
    echo
    echo "| sample (median per third) | first | middle | last | |"
    echo "|---|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' <<<"$growth"
    echo
    echo "Last sample: $(head -n 1 "$out/samples.tsv" | tr '\t' ' ') = $(tr '\t' ' ' <<<"$last")"
    [ -z "$cache_note" ] || { echo; echo "$cache_note"; }
    if [ -s "$out/dirs-third-2.tsv" ]; then
        echo
        echo "Directories that grew most from two thirds of the builds to the end (du, bytes):"
        echo
        echo "| directory | at 2/3 | at the end | growth |"
        echo "|---|---|---|---|"
        LC_ALL=C join -t $'\t' -1 2 -2 2 -a 2 -e 0 -o 0,1.1,2.1 "$out/dirs-third-2.tsv" "$out/dirs-end.tsv" |
            awk -F'\t' -v root="$dir/" '{ d = $3 - $2; sub(root, "", $1); if (d > 0) printf "%d\t%s\t%d\t%d\n", d, $1, $2, $3 }' |
            sort -rn | head -n 12 | awk -F'\t' '{ printf "| %s | %d | %d | %+d |\n", $2, $3, $4, $1 }'
        if [ -s "$out/build-records-end.txt" ]; then
            echo
            echo "BuildKit build records (\`buildx history ls\`, --build-history $build_history): $(cat "$out/build-records-third-1.txt" 2>/dev/null || echo ?) → $(cat "$out/build-records-third-2.txt" 2>/dev/null || echo ?) → $(cat "$out/build-records-end.txt")"
        fi
    fi
} | tee "$out/summary.md"
if $check; then
    if [ -n "$fail" ]; then
        echo "build-soak: FAILED:$fail" >&2
        exit 1
    fi
    if $check_growth; then
        echo "build-soak: ok (bounded: images, build cache, disk and the agent flat over the last third; every deletion within the policies)" >&2
    else
        echo "build-soak: ok (safety: no failed build or pass, every deletion within the policies, the running image chain intact; growth not judged${grows:+, growing:$grows})" >&2
    fi
fi
