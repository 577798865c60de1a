//! The agent as a process (the built binary) against a real engine: signals, health,
//! metrics, the events-fed history, disk watermarks. Built with `--features host-tests`.

#[path = "../support/mod.rs"]
mod support;

mod agent_daemon;
mod disk_containerd;
mod disk_daemon;
mod disk_forecast;
mod history_daemon;
mod reuse_daemon;
