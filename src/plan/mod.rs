//! The pure planner: `(inventory, config, now) -> Plan`.
//!
//! Every image gets an action and a reason. No I/O, no clock, no bollard types.
//! `decide` holds the algorithm, `retention` the grouping and ranking, `order` the plan order
//! and deletion waves, `par` the threads, `text` the human rendering of reasons.

mod decide;
mod graph;
mod matching;
mod order;
mod par;
mod pressure;
mod retention;
mod seen;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_usage;
mod text;
mod text_usage;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::history::Source;
pub use decide::{plan, plan_with};
pub use pressure::DiskFigures;
pub use retention::age as image_age;
pub use seen::Usage;
pub use text::{fmt_age, fmt_duration};

/// What happens to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Delete,
    Keep,
    Untouched,
}

/// Why. Rendered in text by `Display` and in JSON by its `kind` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    // ---- delete ----
    /// Matched a policy with no retention rule and older than `min_age`.
    Matched {
        policy: Arc<str>,
        age_secs: u64,
        min_age_secs: u64,
    },
    /// Older than the policy's `max_age`.
    OlderThanMaxAge {
        policy: Arc<str>,
        age_secs: u64,
        max_age_secs: u64,
    },
    /// Beyond the `keep_last` newest in its group.
    BeyondKeepLast {
        policy: Arc<str>,
        keep_last: usize,
        group: Arc<str>,
    },
    /// Deleted (oldest first) to bring the group under `max_total_size`.
    OverSizeBudget {
        policy: Arc<str>,
        group: Arc<str>,
        group_bytes: u64,
        max_total_size: u64,
    },
    /// Not used for longer than the policy's `unused_for` (`last_used`, else `first_seen`;
    /// a parent counts its children's uses).
    UnusedFor {
        policy: Arc<str>,
        last_used: DateTime<Utc>,
        last_used_by: Source,
        idle_secs: u64,
        unused_for_secs: u64,
    },
    /// Evicted, least recently used first, because the disk is at or over `high`.
    DiskPressure {
        policy: Arc<str>,
        /// `last_used` (else `first_seen`) and its source, when the history knows them.
        last_used: Option<DateTime<Utc>>,
        last_used_by: Option<Source>,
        disk: Arc<DiskFigures>,
    },
    // ---- keep ----
    /// Used by a container (running or not).
    InUse { container: String, state: String },
    /// In the parent chain of an image used by a container.
    ParentOfInUse { child: String, container: String },
    /// In the parent chain of a kept image.
    ParentOfKept { child: String },
    /// Protected by a reference glob.
    ProtectedReference { pattern: String },
    /// Protected by a label predicate.
    ProtectedLabel { predicate: String },
    /// Its age cannot be told: `Created` is missing, at or before 1980, or in the future,
    /// and no usable `LastTagTime` stands in for it.
    UnknownAge { policy: Arc<str>, created: String },
    /// Selected by reference glob, but it also carries references the policy's globs do not
    /// match (deleting it would remove those too) and the policy has no `all_references`.
    OtherReferences {
        policy: Arc<str>,
        references: Vec<String>,
    },
    /// Younger than the policy's `min_age`.
    YoungerThanMinAge {
        policy: Arc<str>,
        age_secs: u64,
        min_age_secs: u64,
    },
    /// Among the `keep_last` newest of its group.
    AmongNewest {
        policy: Arc<str>,
        keep_last: usize,
        group: Arc<str>,
    },
    /// Matched, old enough, but no retention rule asks for its deletion.
    WithinPolicy { policy: Arc<str> },
    /// First seen on this engine less than `min_age` ago (pulled or loaded recently),
    /// whatever its `Created`.
    ArrivedRecently {
        policy: Arc<str>,
        first_seen: DateTime<Utc>,
        first_seen_by: Source,
        age_secs: u64,
        min_age_secs: u64,
    },
    /// Used within the policy's `unused_for`.
    UsedRecently {
        policy: Arc<str>,
        last_used: DateTime<Utc>,
        last_used_by: Source,
        idle_secs: u64,
        unused_for_secs: u64,
    },
    /// A `when: disk_pressure` policy, and the disk is below `high` (or eviction already
    /// reaches `low` without this image).
    NoDiskPressure {
        policy: Arc<str>,
        disk: Arc<DiskFigures>,
    },
    /// A `when: disk_pressure` policy, and the disk could not be measured.
    DiskNotMeasured { policy: Arc<str>, error: Arc<str> },
    // ---- untouched ----
    /// No policy selects the image.
    NoPolicyMatches,
}

/// The decision for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Index of the image in the inventory the plan was made from (and of this decision in
    /// [`Plan::decisions`]).
    pub image: usize,
    pub action: Action,
    /// The policy that selected the image, if any.
    pub policy: Option<Arc<str>>,
    pub reason: Reason,
}

/// One deletion, in execution order. Each planned image is deleted by its own call, never
/// with its parents in cascade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    /// Index into [`Plan::decisions`] (which is also the image's index in the inventory).
    pub decision: usize,
    /// 0 for images with no planned-for-deletion child; parents come after all their children.
    pub wave: usize,
    /// Estimated bytes this deletion frees: each layer counted once (see `graph::own_bytes`).
    pub reclaim_bytes: u64,
}

/// A complete plan: one decision per image, the order to show them in, and the deletions in
/// execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One decision per image, in inventory order: `decisions[i]` is about image `i`.
    pub decisions: Vec<Decision>,
    /// Plan order, as indexes into `decisions`: deletions first (children before parents,
    /// oldest first), then kept images, then untouched ones; ties by creation time and ID.
    pub order: Vec<usize>,
    pub deletions: Vec<Deletion>,
    pub reclaimable_bytes: u64,
    /// Whether the engine gave layer-sharing data (`SharedSize`). Without it the byte figures
    /// may count a base that parentless images share more than once.
    pub sharing_data: bool,
}

impl Plan {
    /// The decisions in plan order.
    pub fn in_order(&self) -> impl Iterator<Item = &Decision> {
        self.order.iter().map(|&i| &self.decisions[i])
    }

    /// The decisions with a given action, in plan order.
    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &Decision> {
        self.in_order().filter(move |d| d.action == action)
    }
}

impl Reason {
    /// The action this reason leads to.
    #[must_use]
    pub fn action(&self) -> Action {
        match self {
            Reason::Matched { .. }
            | Reason::OlderThanMaxAge { .. }
            | Reason::BeyondKeepLast { .. }
            | Reason::OverSizeBudget { .. }
            | Reason::UnusedFor { .. }
            | Reason::DiskPressure { .. } => Action::Delete,
            Reason::NoPolicyMatches => Action::Untouched,
            _ => Action::Keep,
        }
    }

    /// The stable `snake_case` kind, as in JSON and metrics labels.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Matched { .. } => "matched",
            Reason::OlderThanMaxAge { .. } => "older_than_max_age",
            Reason::BeyondKeepLast { .. } => "beyond_keep_last",
            Reason::OverSizeBudget { .. } => "over_size_budget",
            Reason::UnusedFor { .. } => "unused_for",
            Reason::DiskPressure { .. } => "disk_pressure",
            Reason::ArrivedRecently { .. } => "arrived_recently",
            Reason::UsedRecently { .. } => "used_recently",
            Reason::NoDiskPressure { .. } => "no_disk_pressure",
            Reason::DiskNotMeasured { .. } => "disk_not_measured",
            Reason::InUse { .. } => "in_use",
            Reason::ParentOfInUse { .. } => "parent_of_in_use",
            Reason::ParentOfKept { .. } => "parent_of_kept",
            Reason::ProtectedReference { .. } => "protected_reference",
            Reason::ProtectedLabel { .. } => "protected_label",
            Reason::UnknownAge { .. } => "unknown_age",
            Reason::OtherReferences { .. } => "other_references",
            Reason::YoungerThanMinAge { .. } => "younger_than_min_age",
            Reason::AmongNewest { .. } => "among_newest",
            Reason::WithinPolicy { .. } => "within_policy",
            Reason::NoPolicyMatches => "no_policy_matches",
        }
    }
}
