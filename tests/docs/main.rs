//! What the documentation claims, checked: README.md, CONTRIBUTING.md and docs/ against the
//! code (always), and against the tools they name (groff, docker-compose, promtool,
//! systemd-tmpfiles, haproxy, systemd-analyze; with `--features host-tests`).

#[path = "../support/mod.rs"]
mod support;

mod du;
mod engines;
#[cfg(feature = "host-tests")]
mod examples;
#[cfg(feature = "host-tests")]
mod man_pages;
#[cfg(feature = "host-tests")]
mod metrics;
mod readme;
#[cfg(feature = "host-tests")]
mod readme_builds;
mod readme_disk;
#[cfg(feature = "host-tests")]
mod socket_proxy;
#[cfg(feature = "host-tests")]
mod systemd;
