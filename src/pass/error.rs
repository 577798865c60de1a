//! Why a pass failed as a whole. Per-image failures are outcomes, not errors: a pass fails
//! only when the engine cannot be read, a lock cannot be used, a disk a policy needs cannot
//! be measured, or the engine went away during the deletions.

use super::disk::DiskError;
use crate::engine::EngineError;
use crate::execute::Summary;
use crate::locks::{BuildLockError, LockError};

/// Why a pass failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The host lock (the agent's passes take it; commands take it before the pass).
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    BuildLock(#[from] BuildLockError),
    /// A saved plan that may not be applied (any more): made for another engine, or too old
    /// by the time its deletions could start.
    #[error(transparent)]
    PlanFile(#[from] crate::plan_file::PlanFileError),
    /// The history file is there and cannot be read (it is left as it is).
    #[error(transparent)]
    History(#[from] crate::history::store::Unreadable),
    /// A `when: disk_pressure` policy needs the disk and it cannot be measured, in a pass
    /// that requires it ([`super::PassOptions::require_disk`]: `prune` and `plan`).
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The engine went away during the deletions: what was done is in `summary`, the rest
    /// was not attempted.
    #[error("{error} (the pass stopped; {} planned deletions not attempted)", .summary.not_attempted)]
    EngineLost {
        error: EngineError,
        summary: Box<Summary>,
    },
}

impl PassError {
    /// True when the engine could not be reached: the agent backs off and retries.
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        match self {
            PassError::Engine(e) => e.is_gone(),
            PassError::EngineLost { .. } => true,
            PassError::Lock(_)
            | PassError::BuildLock(_)
            | PassError::History(_)
            | PassError::PlanFile(_)
            | PassError::Disk(_) => false,
        }
    }

    /// What a pass that failed as a whole still did (deletions before the engine went away).
    #[must_use]
    pub fn partial_summary(&self) -> Option<&Summary> {
        match self {
            PassError::EngineLost { summary, .. } => Some(summary),
            _ => None,
        }
    }

    /// True when the pass gave up because the agent is stopping.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, PassError::Lock(LockError::Cancelled { .. }))
    }
}
