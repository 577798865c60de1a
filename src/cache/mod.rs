//! The build cache BuildKit leaves behind: records as plain values, a pure planner that gives
//! every record a decision and a reason under the `build_cache:` rules, the execution of its
//! deletions through the engine, and their rendering.
//!
//! `record` owns the domain types the engine fills; `plan` decides (no I/O, no clock, no
//! bollard); `execute` deletes exactly the planned records through `POST /build/prune`; `summary`, `render` and
//! `hint` report. Only `engine::docker` knows how the engine spells any of it.

mod execute;
pub mod hint;
mod plan;
mod reason;
pub mod record;
pub mod render;
mod run;
pub mod saved;
mod summary;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use execute::{CacheExecution, CacheOutcome, CacheResult, NO_PRUNE_API, execute, request};
pub use plan::{CacheDecision, CacheDeletion, CachePlan, plan};
pub use reason::CacheReason;
pub use record::{CacheRecord, CacheType, build_in_progress};
pub use run::{plan_logged, take_disk_usage};
pub use summary::{CacheSummary, summarize};

/// The build cache section of one pass: the plan, its outcomes, and why it was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheReport {
    pub plan: CachePlan,
    pub results: Vec<CacheResult>,
    /// Set when the engine has no build cache or it could not be read.
    pub notice: Option<String>,
}
