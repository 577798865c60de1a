//! stagesweep: a policy-driven garbage collector for the images Docker builds leave behind.
//!
//! The data flows config → inventory → plan → execute → report; `pass` ties one
//! garbage-collection pass together and `agent` runs passes on a schedule. From the ground
//! floor up (no module imports from a floor above its own; `tests/pure/house.rs` checks it):
//!
//! - `units`, `reference`, `exit`, `progress`: formatting, reference spellings, exit codes,
//!   the terminal's progress bar;
//! - `inventory`: the engine's state as plain values (images, containers, build cache
//!   records, the disk measurement);
//! - `config`: YAML → validated [`config::Config`];
//! - `engine` (the [`engine::Engine`] trait; only `engine::docker` knows bollard and HTTP),
//!   `locks` (the host lock and the build lock);
//! - `history` (first seen, last used), `builds` (running builds hold deletions back);
//! - `plan`: the pure planner, images and build cache;
//! - `execute`: identity-checked deletion, and the counts of a plan and its outcomes;
//! - `plan_file`: the one schema `plan --output json` writes and `apply` reads;
//! - `pass`: one pass end to end, its inputs gathered once;
//! - `report`: text and JSON rendering of a pass;
//! - `agent` (the long-running loop) and `cmd` (one thin file per subcommand).

pub mod agent;
pub mod builds;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod execute;
pub mod exit;
pub mod history;
pub mod inventory;
pub mod locks;
pub mod pass;
pub mod plan;
pub mod plan_file;
pub mod progress;
pub mod reference;
pub mod report;
pub mod units;
