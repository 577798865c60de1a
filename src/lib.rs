//! stagesweep: a policy-driven garbage collector for the images Docker builds leave behind.
//!
//! The data flows config → inventory → plan → execute → report; `pass` ties one
//! garbage-collection pass together and `agent` runs passes on a schedule.
//! Only `engine::docker` knows about bollard; everything that decides lives in `plan`.

pub mod agent;
pub mod apply;
pub mod builds;
pub mod cache;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod disk;
pub mod engine;
pub mod execute;
pub mod exit;
pub mod history;
pub mod inventory;
pub mod lock;
pub mod logging;
pub mod observe;
pub mod pass;
pub mod plan;
pub mod progress;
pub mod reference;
pub mod report;
pub mod summary;
pub mod tag_times;
pub mod units;
