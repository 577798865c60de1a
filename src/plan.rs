//! The pure planner: `(inventory, config, now) -> Plan`.
//!
//! Every image gets an action and a reason. No I/O, no clock, no bollard types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::inventory::Inventory;

/// What happens to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Delete,
    Keep,
    Untouched,
}

/// Why. Rendered in text by `Display` and in JSON by its `kind` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    // ---- delete ----
    /// Matched a policy with no retention rule and older than `min_age`.
    Matched { policy: String, age_secs: u64 },
    /// Older than the policy's `max_age`.
    OlderThanMaxAge {
        policy: String,
        age_secs: u64,
        max_age_secs: u64,
    },
    /// Beyond the `keep_last` newest in its group.
    BeyondKeepLast {
        policy: String,
        keep_last: usize,
        group: String,
    },
    /// Deleted (oldest first) to bring the group under `max_total_size`.
    OverSizeBudget {
        policy: String,
        group: String,
        group_bytes: u64,
        max_total_size: u64,
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
    /// Younger than the policy's `min_age`.
    YoungerThanMinAge { policy: String, min_age_secs: u64 },
    /// Among the `keep_last` newest of its group.
    AmongNewest {
        policy: String,
        keep_last: usize,
        group: String,
    },
    /// Matched, old enough, but no retention rule asks for its deletion.
    WithinPolicy { policy: String },
    // ---- untouched ----
    /// No policy selects the image.
    NoPolicyMatches,
}

/// The decision for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub image_id: String,
    pub references: Vec<String>,
    pub created: DateTime<Utc>,
    pub size: u64,
    pub action: Action,
    /// The policy that selected the image, if any.
    pub policy: Option<String>,
    pub reason: Reason,
}

/// One deletion, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    /// Index into [`Plan::decisions`].
    pub decision: usize,
    /// Ask the daemon to delete untagged parents left without children. Only set when
    /// every parent the daemon could delete in cascade is itself planned for deletion.
    pub prune_parents: bool,
    /// 0 for images with no planned-for-deletion child; parents come after all their children.
    pub wave: usize,
    /// Estimated bytes this deletion frees (own layers only; no double counting along chains).
    pub reclaim_bytes: u64,
}

/// A complete plan: one decision per image, and the deletions in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    pub deletions: Vec<Deletion>,
    pub reclaimable_bytes: u64,
}

/// Compute the plan.
#[must_use]
pub fn plan(inventory: &Inventory, config: &Config, now: DateTime<Utc>) -> Plan {
    let _ = (inventory, config, now, Duration::ZERO);
    todo!("planner")
}
