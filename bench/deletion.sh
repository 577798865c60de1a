#!/usr/bin/env bash
# Deletion throughput, side by side, on a private throwaway engine (needs root):
#   (a) docker image prune -f --filter label=stage=builder        (the classic recipe)
#   (b) stagesweep prune --label stage=builder --min-age 0s       (release build)
#   (c) bare DELETE /images/{id} calls, at the fastest concurrency (the engine's own limit)
# on identical sets of N untagged images, each with its own layer. Before every timed run an
# identical set is loaded (not timed); each run must start with exactly N images and end with 0.
#
#   bench/deletion.sh [--engine docker20|docker28|docker28-containerd] [--sizes 100,500,1000]
#                     [--reps 2] [--sweep-size 300] [--stagesweep-concurrency C[,C...]] [--out DIR]
#
# --engine: Debian's dockerd 20.10 (default), or Docker 28.5 on overlay2 or on the containerd
# image store (scripts/engines/, fetched when missing); (a) uses that engine's own CLI.
#
# Prints a table and writes DIR/results.tsv (default: a new temp dir). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

sizes=100,500,1000
reps=2
sweep_size=300
ss_conc=""
out=""
engine=docker20
while [ $# -gt 0 ]; do
    case $1 in
    --engine) engine=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --sweep-size) sweep_size=$2; shift 2 ;;
    --stagesweep-concurrency) ss_conc=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root (it starts its own engine)"
need_tools
build_release

work=$(mktemp -d /tmp/stagesweep-bench.XXXXXX)
out=${out:-$work/out}
mkdir -p "$out"
cleanup() { engine_stop "$engine" "$work/d" >/dev/null 2>&1 || true; }
trap cleanup EXIT
engine_start "$engine" "$work/d"
echo "bench: private $engine at $DOCKER_HOST" >&2
results=$out/results.tsv
printf 'tool\tconcurrency\tn\trep\tsecs\tpeak_rss_kib\n' >"$results"

# stagesweep's config: the ad-hoc flags pick the images; this only sets docker.concurrency.
ss_config() {
    local c=$1 f=$work/stagesweep-c$1.yaml
    # No history: the images are loaded just before the timed run (with a history they would
    # be first seen now, kept until min_age).
    printf 'docker:\n  concurrency: %s\nhistory:\n  enabled: false\n' "$c" >"$f"
    echo "$f"
}

count() { "$TOOL" count --label "$1"; }

# Load exactly N images labelled stage=builder and with a unique run label; check the count.
prepare() {
    local n=$1 run=$2
    "$TOOL" load --count "$n" --label stage=builder --label "stagesweep.bench=$run" 2>/dev/null
    local have total
    have=$(count "stagesweep.bench=$run")
    total=$(count stage=builder)
    [ "$have" -eq "$n" ] && [ "$total" -eq "$n" ] ||
        die "run $run: expected exactly $n images before the run, found $have (stage=builder: $total)"
}

# Time one tool on a freshly loaded set; append a row to results.tsv.
run_one() {
    local tool=$1 conc=$2 n=$3 rep=$4
    local run="$tool-c$conc-n$n-r$rep-$RANDOM"
    prepare "$n" "$run"
    local t0 t1 rss=""
    t0=$(now_s)
    case $tool in
    a) "$DOCKER_CLI" image prune -f --filter label=stage=builder >/dev/null ;;
    b)
        /usr/bin/time -v -o "$work/time.txt" "$STAGESWEEP" prune --config "$(ss_config "$conc")" \
            --label stage=builder --min-age 0s --no-wait --lock-file "$work/stagesweep.lock" \
            --output json >"$work/prune.json" 2>"$work/prune.log" ||
            die "stagesweep prune failed; see $work/prune.log"
        ;;
    c) "$TOOL" delete --label "stagesweep.bench=$run" --concurrency "$conc" >/dev/null ;;
    esac
    t1=$(now_s)
    if [ "$tool" = b ]; then
        rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
        local deleted
        deleted=$(jq '.summary.deleted' "$work/prune.json")
        [ "$deleted" -eq "$n" ] || die "stagesweep reported $deleted deletions, expected $n"
    fi
    local left
    left=$(count stage=builder)
    [ "$left" -eq 0 ] || die "run $run: $left images left after tool $tool, expected 0"
    local secs
    secs=$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')
    printf '%s\t%s\t%s\t%s\t%.4f\t%s\n' "$tool" "$conc" "$n" "$rep" "$secs" "$rss" | tee -a "$results" >&2
}

median_of() { # tool conc n -> median secs
    awk -F'\t' -v t="$1" -v c="$2" -v n="$3" '$1 == t && $2 == c && $3 == n { print $5 }' "$results" | median
}

# 1. The engine's own limit: find the fastest concurrency on this daemon.
echo "bench: sweeping (c) concurrency at N=$sweep_size" >&2
best_c=1 best_s=""
for c in 1 2 4 8 16; do
    run_one c "$c" "$sweep_size" 0
    s=$(median_of c "$c" "$sweep_size")
    if [ -z "$best_s" ] || awk -v s="$s" -v b="$best_s" 'BEGIN { exit !(s < b) }'; then
        best_c=$c best_s=$s
    fi
done
echo "bench: fastest bare-DELETE concurrency: $best_c" >&2

# stagesweep at the config's default docker.concurrency (4) unless told otherwise.
ss_conc=${ss_conc:-4}
IFS=, read -r -a size_list <<<"$sizes"
IFS=, read -r -a ss_list <<<"$ss_conc"

# 2. Side by side, the tools' order rotating every repetition.
for n in "${size_list[@]}"; do
    for rep in $(seq 1 "$reps"); do
        tools=(a "${ss_list[@]/#/b}" c)
        shift_by=$(((rep - 1) % ${#tools[@]}))
        order=("${tools[@]:shift_by}" "${tools[@]:0:shift_by}")
        for t in "${order[@]}"; do
            case $t in
            a) run_one a 1 "$n" "$rep" ;;
            c) run_one c "$best_c" "$n" "$rep" ;;
            b*) run_one b "${t#b}" "$n" "$rep" ;;
            esac
        done
    done
done

# 3. The table.
{
    echo
    echo "docker CLI for (a): $DOCKER_CLI ($("$DOCKER_CLI" --version))"
    echo "engine: $engine, $("$DOCKER_CLI" version --format 'server {{.Server.Version}}'); storage driver: $("$DOCKER_CLI" info --format '{{.Driver}} {{.DriverStatus}}')"
    echo "cpu: $(nproc) x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "reps: $reps; (c) at concurrency $best_c (fastest of 1,2,4,8,16 at N=$sweep_size)"
    echo
    printf '| N | (a) prune ms/img | (b) stagesweep c | (b) ms/img | (c) bare DELETE ms/img | b/a | b/c | stagesweep peak RSS MiB |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
    for n in "${size_list[@]}"; do
        a=$(median_of a 1 "$n")
        c=$(median_of c "$best_c" "$n")
        for bc in "${ss_list[@]}"; do
            b=$(median_of b "$bc" "$n")
            rss=$(awk -F'\t' -v c="$bc" -v n="$n" '$1 == "b" && $2 == c && $3 == n { print $6 }' "$results" | median)
            awk -v n="$n" -v a="$a" -v b="$b" -v c="$c" -v bc="$bc" -v rss="$rss" 'BEGIN {
                printf "| %d | %.2f | %d | %.2f | %.2f | %.2f | %.2f | %.1f |\n",
                    n, 1000 * a / n, bc, 1000 * b / n, 1000 * c / n, b / a, b / c, rss / 1024 }'
        done
    done
    echo
    echo "(c) concurrency sweep at N=$sweep_size (ms/img):"
    for c in 1 2 4 8 16; do
        awk -v c="$c" -v n="$sweep_size" -v s="$(median_of c "$c" "$sweep_size")" \
            'BEGIN { printf "  c=%-2d %.2f\n", c, 1000 * s / n }'
    done
    echo "raw rows: $results"
} | tee "$out/table.md"
