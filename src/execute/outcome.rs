//! What happened to each planned deletion, as plain values.

use serde::{Deserialize, Serialize};

/// What happened to one planned deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The daemon deleted the image (our call; never a cascade).
    Deleted,
    /// The daemon answered with `Untagged` records but kept the image (it gained a child or
    /// another reference): not deleted, no bytes counted.
    UntaggedOnly { untagged: Vec<String> },
    /// 404: someone else deleted it first (not a failure).
    AlreadyGone,
    /// 409, or a re-check found the image changed: the daemon's (or our) reason.
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
    /// What the engine's answers to this deletion's calls removed that the plan did not
    /// (another actor moved or added a tag inside the window between the re-check and the
    /// DELETE, which no engine lets a client close).
    pub unplanned: Vec<UnplannedRemoval>,
}

/// Something an engine removed, by its own answer, that the plan did not ask to remove: a
/// reference untagged from an image that was not the planned one (or from the planned image,
/// added since the plan), and the images such a call deleted along.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnplannedRemoval {
    /// The reference the engine untagged, when the removal was an untag.
    pub reference: Option<String>,
    /// What the engine deleted with that call besides the planned image: image and layer
    /// IDs (its answer does not tell them apart).
    pub deleted: Vec<String>,
    /// The planned image whose deletion the call belonged to.
    pub while_deleting: String,
    /// The call: `DELETE /images/<name>`.
    pub call: String,
}

impl Outcome {
    /// The stable `snake_case` kind, as in JSON.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Deleted => "deleted",
            Outcome::UntaggedOnly { .. } => "untagged_only",
            Outcome::AlreadyGone => "already_gone",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
            Outcome::NotAttempted => "not_attempted",
        }
    }

    /// True when the image is no longer on the engine.
    #[must_use]
    pub fn is_gone(&self) -> bool {
        matches!(self, Outcome::Deleted | Outcome::AlreadyGone)
    }
}
