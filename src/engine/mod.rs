//! The narrow interface to a container engine, its plain values and its errors.
//!
//! `docker` holds the bollard implementation (the only place bollard types appear);
//! `fake` (tests and the `test-util` feature only) an in-memory engine for fast tests;
//! `watch` notices an engine that went away mid-pass. Nothing here decides anything.

pub mod docker;
mod error;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
mod interface;
mod values;
pub mod watch;

pub use error::EngineError;
pub use interface::Engine;
pub use values::{
    CachePrune, CachePruneReport, DataUsage, EngineEvent, EngineInfo, EngineKind, EventKind,
    EventStream, ImageState, ImageStore, RemoveReport,
};
