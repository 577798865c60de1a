//! Image history: when each image was first seen and last used on this engine, and where
//! each time came from. Shared by the agent (which keeps it current from the engine's events)
//! and `prune` (which reads it and records the images it sees for the first time).
//!
//! `file` reads the file and writes it crash-safe, `layout` owns its bytes (`layout_v1` the
//! previous layout, still read), `reconcile` brings the history in line with an inventory
//! (adoption on the very first run, gaps, new images), `events` turns engine events into
//! observations, `worker` is the agent's events task. This module holds
//! the plain values; it decides nothing about deletion (the planner reads the records).

pub mod events;
pub mod file;
mod layout;
mod layout_v1;
pub mod reconcile;
mod record;
pub mod store;
mod uses;
pub mod worker;

pub use record::{History, Record, Records, Source, unix};
pub use uses::{DEFAULT_HALF_LIFE_SECS, Uses, decay};
