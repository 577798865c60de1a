#!/usr/bin/env bash
# Download newer container engines from Debian sid and unpack them PRIVATELY (no package is
# installed, the system's apt sources and state are not touched), for the engine tests to run
# against besides bookworm's docker.io 20.10 and podman 4.3.
#
#   scripts/engines/fetch.sh [ENGINE...]      ENGINE: docker28 (default), podman5, all
#
#   docker28  docker.io 28.5.x (dockerd, API 1.51), containerd 2.x, docker-cli 28.5.x,
#             docker-buildx, tini-static -> ENGINES/docker28 (see scripts/engines/docker28.sh)
#   podman5   podman 5.x with sid's glibc and libraries beside it, the binary patched to use
#             them (patchelf) -> ENGINES/podman5 (see scripts/engines/podman5.sh)
#
# ENGINES is $STAGESWEEP_ENGINES_DIR, else ${CARGO_TARGET_DIR:-target}/engines in the repo.
# Idempotent: an engine already unpacked (its VERSIONS file is written last) is not fetched
# again; the run then takes well under a second. Delete ENGINES/<engine> to fetch it anew.
#
# How: a private apt configuration under ENGINES/apt (its own sources.list naming only sid,
# signed by /usr/share/keyrings/debian-archive-keyring.gpg, its own lists, cache and an empty
# dpkg status; only the Packages index is fetched, no apt hooks run), `apt-get download`, then
# `dpkg -x`. The Debian mirror is the system's (the first source of this release's suite in
# /etc/apt/sources.list.d/debian.sources, other *.sources, or sources.list and *.list);
# STAGESWEEP_DEBIAN_MIRROR overrides it, STAGESWEEP_ENGINES_SUITE (default sid) the suite.
# runc is bookworm's (package runc, which docker.io pulls in): sid's needs glibc 2.38.
#
# sid moves on: the versions are checked (docker.io and docker-cli 28.5.*, containerd 2.*,
# podman 5.*); STAGESWEEP_ENGINES_ANY_VERSION=1 accepts whatever sid has.
# Needs apt-get, dpkg, flock, and patchelf for podman5. Root is not needed.
set -euo pipefail
prog=fetch.sh
# shellcheck source=scripts/engines/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

suite=${STAGESWEEP_ENGINES_SUITE:-sid}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
started=$SECONDS

# ---- the engines: packages, expected versions (globs), set-up and check -----------------

# shellcheck disable=SC2034 # read through a nameref in fetch_engine
docker28_packages=(docker.io containerd docker-cli docker-buildx tini-static)
docker28_expect() {
    case "$1" in
    docker.io | docker-cli) echo "28.5.*" ;;
    containerd) echo "2.*" ;;
    *) echo "*" ;;
    esac
}
docker28_setup() { :; }
docker28_verify() {
    local d=$1
    "$d/usr/sbin/dockerd" --version
    "$d/usr/bin/containerd" --version
    "$d/usr/bin/docker" --version
    "$d/usr/libexec/docker/cli-plugins/docker-buildx" version
    # bookworm's runc, which docker28.sh runs (sid's needs glibc 2.38)
    command -v runc >/dev/null 2>&1 ||
        die "runc not found: the docker28 engine uses the system's (bookworm's) runc; install it: apt-get install -y runc"
    runc --version | sed -n 1p
}
docker28_present() {
    local d=$1
    [ -x "$d/usr/sbin/dockerd" ] && [ -x "$d/usr/bin/containerd" ] && [ -x "$d/usr/bin/docker" ] &&
        [ -x "$d/usr/libexec/docker/cli-plugins/docker-buildx" ]
}

# podman needs glibc >= 2.38 and newer gpgme/subid than bookworm has: those come from sid too,
# and a copy of the binary gets sid's dynamic loader and an RPATH to sid's libraries (not
# `ld.so podman`: podman re-executes /proc/self/exe). The rest (libsystemd, libselinux, ...)
# is bookworm's, found on the default path. conmon, runc and netavark are bookworm's.
# shellcheck disable=SC2034 # read through a nameref in fetch_engine
podman5_packages=(podman libc6 libgpgme45 libassuan9 libgpg-error0 libsubid6 libseccomp2 libsqlite3-0)
podman5_expect() {
    case "$1" in
    podman) echo "5.*" ;;
    *) echo "*" ;;
    esac
}
podman5_setup() {
    local d=$1 ld
    command -v patchelf >/dev/null 2>&1 ||
        die "patchelf not found (podman5 needs it to point podman at sid's glibc): apt-get install -y patchelf"
    ld=$(find "$d/usr/lib/x86_64-linux-gnu" -maxdepth 1 -name 'ld-linux-x86-64.so.2' | sed -n 1p)
    [ -n "$ld" ] || die "sid's libc6 has no ld-linux-x86-64.so.2 under $d/usr/lib/x86_64-linux-gnu (amd64 only)"
    mkdir -p "$d/bin"
    cp "$d/usr/bin/podman" "$d/bin/podman"
    patchelf --set-interpreter "$ld" --force-rpath --set-rpath "$d/usr/lib/x86_64-linux-gnu" "$d/bin/podman"
    if "$ld" --list "$d/bin/podman" | grep 'not found'; then
        die "podman 5 misses the shared libraries above (install them from bookworm, or add them to podman5_packages in $0)"
    fi
}
podman5_verify() {
    local d=$1
    "$d/bin/podman" --version
    for helper in conmon runc; do
        command -v "$helper" >/dev/null 2>&1 ||
            die "$helper not found: podman5 uses the system's (bookworm's); install it: apt-get install -y podman"
    done
    conmon --version | sed -n 1p
    runc --version | sed -n 1p
}
podman5_present() {
    [ -x "$1/bin/podman" ] && "$1/bin/podman" --version >/dev/null 2>&1
}

# ---- the private apt configuration -------------------------------------------------------

# The system's Debian mirror: the URI of the first enabled source for this release's own suite
# (e.g. bookworm) with component main.
debian_mirror() {
    if [ -n "${STAGESWEEP_DEBIAN_MIRROR:-}" ]; then
        echo "${STAGESWEEP_DEBIAN_MIRROR%/}"
        return
    fi
    local codename="" f uri=""
    # shellcheck disable=SC1091
    [ -r /etc/os-release ] && codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    local files=()
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] && files+=("$f")
    done
    for f in "${files[@]}"; do
        case "$f" in
        *.sources)
            uri=$(awk -v want="$codename" '
                function flush() {
                    if (uris != "" && enabled && types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/) {
                        n = split(suites, s, " ")
                        for (i = 1; i <= n; i++)
                            if ((want != "" && s[i] == want) || (want == "" && s[i] !~ /-/)) {
                                split(uris, u, " "); if (!found) print u[1]; found = 1
                            }
                    }
                    uris = ""; suites = ""; comps = ""; types = ""; enabled = 1
                }
                BEGIN { enabled = 1 }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
                  if (key == "uris") uris = $0; else if (key == "suites") suites = $0
                  else if (key == "components") comps = $0; else if (key == "types") types = $0
                  else if (key == "enabled") enabled = (tolower($0) != "no") }
                END { flush() }' "$f")
            ;;
        *)
            uri=$(awk -v want="$codename" '
                $1 != "deb" { next }
                { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } }
                { uri = $i; suite = $(i + 1); main = 0
                  for (j = i + 2; j <= NF; j++) if ($j == "main") main = 1 }
                main && ((want != "" && suite == want) || (want == "" && suite !~ /-/)) { print uri; exit }' "$f")
            ;;
        esac
        case "$uri" in "" | cdrom:*) uri="" ;; *) break ;; esac
    done
    [ -n "$uri" ] || die "no Debian mirror found for suite '${codename:-?}' in /etc/apt/sources.list{,.d/}; set STAGESWEEP_DEBIAN_MIRROR (e.g. http://deb.debian.org/debian)"
    echo "${uri%/}"
}

apt_dir=$engines_dir/apt
apt_opts=()
apt_ready=false
# Write the private configuration and fetch sid's Packages index (once per run).
apt_update() {
    $apt_ready && return 0
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found (this script needs Debian's apt)"
    [ -r "$keyring" ] || die "$keyring missing: apt-get install -y debian-archive-keyring"
    local mirror
    mirror=$(debian_mirror)
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb [signed-by=$keyring target=Packages] $mirror $suite main" >"$apt_dir/sources.list"
    : >"$apt_dir/status"
    # Read after the system's configuration: no post-update hooks (appstream, packagekit; the
    # source's target=Packages keeps DEP-11 and Contents indexes away), and a binary cache kept
    # under Dir::Cache (Docker-built systems set it to "", making every apt-cache call re-parse).
    cat >"$apt_dir/apt.conf" <<'EOF'
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
Dir::Cache::pkgcache "pkgcache.bin";
Dir::Cache::srcpkgcache "srcpkgcache.bin";
EOF
    apt_opts=(
        -q -c "$apt_dir/apt.conf"
        -o "Dir::Etc::SourceList=$apt_dir/sources.list"
        -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache=$apt_dir/cache"
        -o "Dir::State::status=$apt_dir/status"
        -o Dir::Etc::Preferences=/dev/null
        -o Dir::Etc::PreferencesParts=/dev/null
        -o Acquire::Languages=none
    )
    # As root apt downloads as _apt, which may not write under ENGINES: download as root.
    [ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)
    echo "$prog: apt-get update ($mirror $suite, private lists under $apt_dir)"
    apt-get "${apt_opts[@]}" --error-on=any update </dev/null ||
        die "apt-get update of $mirror $suite failed (network? mirror? set STAGESWEEP_DEBIAN_MIRROR)"
    apt_ready=true
}

# "PACKAGE VERSION" lines: the versions apt would download for the packages given.
candidates() {
    apt-cache "${apt_opts[@]}" policy "$@" |
        awk '/^[^ \t].*:$/ { p = substr($0, 1, length($0) - 1) } $1 == "Candidate:" { print p, $2 }'
}

# ---- fetch one engine --------------------------------------------------------------------

fetch_engine() {
    local name=$1 d=$engines_dir/$1 t0=$SECONDS
    local -n packages="${name}_packages"
    if [ -f "$d/VERSIONS" ] && "${name}_present" "$d"; then
        echo "$prog: $name present in $d ($(tr '\n' ' ' <"$d/VERSIONS" | sed 's/ $//'))"
        return 0
    fi
    apt_update
    local p v want bad=()
    local versions=() policy
    policy=$(candidates "${packages[@]}")
    for p in "${packages[@]}"; do
        v=$(awk -v p="$p" '$1 == p { print $2 }' <<<"$policy")
        case "$v" in "" | "(none)") die "$suite has no package $p (on this mirror); $name cannot be fetched" ;; esac
        want=$("${name}_expect" "$p")
        # The upstream version: no epoch, no Debian revision or +dfsg suffix.
        local up=${v#*:}
        # shellcheck disable=SC2254
        case "$up" in $want) ;; *) bad+=("$p $v (want $want)") ;; esac
        versions+=("$p $v")
    done
    if [ "${#bad[@]}" -gt 0 ] && [ "${STAGESWEEP_ENGINES_ANY_VERSION:-0}" != 1 ]; then
        die "$suite has other versions than the tests expect: ${bad[*]} (sid moved on?). Set STAGESWEEP_ENGINES_ANY_VERSION=1 to use what $suite has, or update the expected versions (${name}_expect) in $0"
    fi
    local debs=$engines_dir/debs/$name
    rm -rf "$debs" "$d"
    mkdir -p "$debs" "$d"
    echo "$prog: $name: apt-get download ${packages[*]}"
    (cd "$debs" && apt-get "${apt_opts[@]}" download "${packages[@]}" </dev/null) ||
        die "apt-get download for $name failed (network? re-run; ENGINES=$engines_dir)"
    # Unpacked side by side (xz is the slow part); the .debs go once unpacked.
    local deb pids=() pid
    for deb in "$debs"/*.deb; do
        dpkg -x "$deb" "$d" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || die "dpkg -x failed in $d (disk full? see above)"; done
    rm -rf "$debs"
    "${name}_setup" "$d"
    echo "$prog: $name unpacked in $d in $((SECONDS - t0))s:"
    local out
    if ! out=$("${name}_verify" "$d" 2>&1); then
        echo "$out" >&2
        die "$name does not run from $d (see above); delete $d and run $0 $name again"
    fi
    # shellcheck disable=SC2001 # indent every line
    sed 's/^/    /' <<<"$out"
    printf '%s\n' "${versions[@]}" >"$d/VERSIONS"
    echo "$prog: $name: $(tr '\n' ' ' <"$d/VERSIONS" | sed 's/ $//')"
}

engines=()
[ "$#" -gt 0 ] || set -- docker28
for a in "$@"; do
    case "$a" in
    docker28 | podman5) engines+=("$a") ;;
    all) engines+=(docker28 podman5) ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown engine '$a' (usage: $0 [docker28|podman5|all]...)" ;;
    esac
done

command -v flock >/dev/null 2>&1 || die "flock not found: apt-get install -y util-linux"
mkdir -p "$engines_dir"
# One fetch at a time per ENGINES directory (parallel CI jobs, a developer's second shell).
exec {lock}>"$engines_dir/.lock"
flock -w 600 "$lock" || die "another fetch.sh holds $engines_dir/.lock for over 10 minutes"
for e in "${engines[@]}"; do fetch_engine "$e"; done
# apt's binary caches (≈ 100 MB) only served this run; the lists stay.
if $apt_ready; then
    rm -f "$apt_dir"/cache/*.bin
    rmdir "$engines_dir/debs" 2>/dev/null || true
fi
[ "$((SECONDS - started))" -lt 2 ] || echo "$prog: done in $((SECONDS - started))s"
