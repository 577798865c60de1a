//! The shipped artifacts: the .deb (built, inspected, its units run under a real systemd)
//! and the sidecar image (a static binary in a scratch image, run on a real engine). Built
//! with `--features host-tests`.

#[path = "../support/mod.rs"]
mod support;

mod agent_sidecar;
mod package;
