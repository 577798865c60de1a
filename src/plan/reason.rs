//! What happens to an image ([`Action`]) and why ([`Reason`]): one reason per image,
//! rendered in text by `Display` (see `text`) and in JSON by its `kind` tag.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ranking::Ranked;
use super::watermarks::DiskFigures;
use crate::history::Source;

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
    /// Beyond the `keep_last` newest of its group: `rank` (1 = newest) by build or tag
    /// time, among the group's images that no other reason keeps.
    BeyondKeepLast {
        policy: Arc<str>,
        keep_last: usize,
        group: Arc<str>,
        #[serde(default)]
        rank: usize,
    },
    /// Deleted (in the policy's `order`) to bring the group under `max_total_size`.
    OverSizeBudget {
        policy: Arc<str>,
        group: Arc<str>,
        group_bytes: u64,
        max_total_size: u64,
        /// What put it first under `order: lfu` or `size` (absent for `lru` and `oldest`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ranked: Option<Ranked>,
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
    /// An untagged parent that nothing else needs of an image the plan deletes (its
    /// `child`, deleted by `policy`, whose `parents: delete` takes the chain along). Deleted
    /// after its children, by its own call.
    ParentOfDeleted { child: String, policy: Arc<str> },
    /// Evicted, in the policy's `order` (least recently used first by default), because
    /// the disk is at or over `high`.
    DiskPressure {
        policy: Arc<str>,
        /// `last_used` (else `first_seen`) and its source, when the history knows them.
        last_used: Option<DateTime<Utc>>,
        last_used_by: Option<Source>,
        disk: Arc<DiskFigures>,
        /// What put it first under `order: lfu` or `size` (absent for `lru` and `oldest`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ranked: Option<Ranked>,
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
    /// Among the `keep_last` newest of its group: `rank` (1 = newest) by build or tag time,
    /// among the group's images that no other reason keeps.
    AmongNewest {
        policy: Arc<str>,
        keep_last: usize,
        group: Arc<str>,
        #[serde(default)]
        rank: usize,
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
            | Reason::ParentOfDeleted { .. }
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
            Reason::ParentOfDeleted { .. } => "parent_of_deleted",
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
