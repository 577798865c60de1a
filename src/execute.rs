//! Carry out a plan's deletions against an [`Engine`]: bounded concurrency, children
//! before parents, per-image outcomes. Decides nothing the plan did not decide.

use serde::Serialize;

/// What happened to one planned deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Deleted by our own call.
    Deleted,
    /// Deleted by the daemon in cascade when a child was deleted.
    DeletedInCascade { child: String },
    /// 404: someone else deleted it first (not a failure).
    AlreadyGone,
    /// 409 or a last-moment check: the daemon's (or our) reason.
    Skipped { reason: String },
    /// Any other error.
    Failed { error: String },
    /// Not attempted: the pass was asked to stop.
    NotAttempted,
}

/// The outcome of one planned deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionResult {
    /// Index into the plan's decisions.
    pub decision: usize,
    pub outcome: Outcome,
    /// Bytes counted as reclaimed (the plan's estimate, when deleted).
    pub bytes: u64,
}
