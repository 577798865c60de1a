//! Configuration: YAML text → raw serde structs → validated, typed [`Config`].
//!
//! Owns the schema (the contract in the README), every validation rule and the
//! embedded default. Durations, sizes, globs, label predicates and the schedule are
//! parsed here, once, at load. Must not talk to Docker or read the clock.

pub mod schedule;
mod types;

pub use types::*;
