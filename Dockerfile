# stagesweep sidecar image: a static binary in an empty image, running as a non-root user.
#
#   docker build -t stagesweep .
#   docker run -d --name stagesweep \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -p 127.0.0.1:9477:9477 stagesweep
#
# The user (uid 65532) is in no group that can open the socket: grant the socket's group
# with --group-add (docker) or supplementalGroups (Kubernetes). See docs/deployment.md, "Sidecar
# container".
#
# Builds for the architecture of the build (amd64, arm64: `docker buildx build --platform
# linux/arm64 .`); the Rust target is read from the builder's rustc, never hard-coded.
# tests/package/agent_sidecar.rs builds the builder stage's exact context (these COPY lines, minus
# .dockerignore) with deploy/image/build.sh, then the final stage from its output.

# Pinned: Rust 1.95.0 on Debian 12 (the same glibc as the packages built by CI).
FROM rust:1.95.0-slim-bookworm AS builder
# This stage is itself what stagesweep prunes: the classic recipe labels builder stages.
LABEL stage=builder
WORKDIR /usr/src/stagesweep
COPY Cargo.toml Cargo.lock ./
# Cargo reads every target the manifest declares, the benches included.
COPY benches ./benches
COPY src ./src
# src/config embeds config/default.yaml (the built-in policy).
COPY config/default.yaml ./config/default.yaml
# src/cmd/shell.rs embeds docs/configuration.md (the man page stagesweep.yaml(5)).
COPY docs/configuration.md ./docs/configuration.md
COPY deploy/image/build.sh ./deploy/image/build.sh
RUN ["sh", "deploy/image/build.sh", "/out"]

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="stagesweep" \
      org.opencontainers.image.description="Policy-driven garbage collector for the images Docker builds leave behind" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="scratch"
COPY deploy/image/passwd /etc/passwd
COPY deploy/image/group /etc/group
# The host lock lives here; writable by the agent's user.
COPY --from=builder --chown=65532:65532 /out/run /run
COPY --from=builder /out/stagesweep /stagesweep
# Socket at /var/run/docker.sock, schedule, policies, metrics on 0.0.0.0:9477.
COPY config/sidecar.yaml /etc/stagesweep/config.yaml
# Read by every subcommand, the HEALTHCHECK's included: mount another file here, or point
# this at it.
ENV STAGESWEEP_CONFIG=/etc/stagesweep/config.yaml
# Fixed malloc thresholds: a pass's memory goes back to the system when the pass ends (the
# same as the systemd unit; BENCHMARKS.md, "Agent memory").
ENV GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072
USER 65532:65532
EXPOSE 9477
# Liveness: GET /livez on metrics.listen from the config (no curl in an empty image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/stagesweep", "healthcheck"]
ENTRYPOINT ["/stagesweep", "agent"]
CMD ["--config", "/etc/stagesweep/config.yaml"]
