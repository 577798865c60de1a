#!/bin/sh
# Build the sidecar image's binary: a fully static stagesweep (glibc static-pie, runs in a
# FROM scratch image) for the architecture this runs on (x86_64, aarch64, ...), copied to
# OUT/stagesweep, with an empty OUT/run/stagesweep for the host lock.
#
#   deploy/image/build.sh OUT
#
# The Dockerfile's builder stage runs it; tests/package/agent_sidecar.rs runs it in a copy of exactly
# that stage's build context (its COPY lines, minus .dockerignore), so a file the build needs
# but the stage does not copy fails the tests. Honours CARGO_TARGET_DIR.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$1
# The host's own target triple: --target keeps +crt-static off build scripts and proc macros.
target=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$target" ] || { echo "build.sh: cannot read the host target from rustc -vV" >&2; exit 1; }
# Packed relative relocations (DT_RELR), as scripts/package.sh links the .deb's binary: the
# relocation table a static-pie applies to itself at start shrinks from ~0.9 MB to a few KB,
# ≈ 1 MiB less resident (BENCHMARKS.md, "Agent memory"). glibc applies DT_RELR since 2.36
# (the builder stage is bookworm's); tests/package/agent_sidecar.rs checks the binary has it.
RUSTFLAGS='-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs' \
    cargo build --release --locked --target "$target"
mkdir -p "$out/run/stagesweep"
cp "${CARGO_TARGET_DIR:-target}/$target/release/stagesweep" "$out/stagesweep"
