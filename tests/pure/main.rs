//! Tests that need nothing but this crate: the fake engine, fake Engine API servers, the CLI
//! without an engine, the configuration, and the house rules of `src/`. Plain `cargo test`
//! runs them.

#[path = "../support/mod.rs"]
mod support;

mod agent_loop;
mod apply;
mod cache_fake;
mod cli;
mod closed_stdout;
mod config;
mod config_fuzz;
mod connections;
mod data_usage;
mod disk_located;
mod du;
mod engine_api;
mod hold;
mod house;
mod locks;
mod logging;
mod pass_builds;
mod pass_children;
mod pass_fake;
mod pass_identity;
mod pass_pressure;
mod plan_file;
mod tag_time_calls;
mod unplanned;
