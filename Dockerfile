# stagesweep sidecar image: a static binary in an empty image, running as a non-root user.
#
#   docker build -t stagesweep .
#   docker run -d --name stagesweep \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -p 127.0.0.1:9477:9477 stagesweep
#
# The user (uid 65532) is in no group that can open the socket: grant the socket's group
# with --group-add (docker) or supplementalGroups (Kubernetes). See "Running continuously" in the README.

FROM rust:1-bookworm AS builder
# This stage is itself what stagesweep prunes: the classic recipe labels builder stages.
LABEL stage=builder
WORKDIR /usr/src/stagesweep
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && mkdir -p /out/run/stagesweep \
 && cp target/x86_64-unknown-linux-gnu/release/stagesweep /out/stagesweep

FROM scratch
COPY deploy/image/passwd /etc/passwd
COPY deploy/image/group /etc/group
# The host lock lives here; writable by the agent's user.
COPY --from=builder --chown=65532:65532 /out/run /run
COPY --from=builder /out/stagesweep /stagesweep
# Socket at /var/run/docker.sock, schedule, policies, metrics on 0.0.0.0:9477.
COPY config/sidecar.yaml /etc/stagesweep/config.yaml
USER 65532:65532
EXPOSE 9477
ENTRYPOINT ["/stagesweep", "agent"]
CMD ["--config", "/etc/stagesweep/config.yaml"]
