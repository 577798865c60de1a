//! Why a build cache record is deleted, kept or left alone: one reason per record, rendered
//! in text by `Display` and in JSON by its `kind` tag.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::plan::reason::Action;
use crate::units::{fmt_age, fmt_bytes, fmt_duration};

/// The reason for a build cache decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CacheReason {
    // ---- delete ----
    /// Not used for at least the rule's `unused_for`.
    UnusedFor {
        rule: Arc<str>,
        idle_secs: u64,
        unused_for_secs: u64,
    },
    /// Among the least recently used while the rule's records total more than `keep_storage`.
    OverKeepStorage {
        rule: Arc<str>,
        total_bytes: u64,
        keep_storage: u64,
    },
    /// Claims `Shared`, but beyond what the listed images can hold at its depth of the
    /// record tree (`plan::build_cache::unheld`), and not used for the rule's `unused_for`.
    UnheldShared {
        rule: Arc<str>,
        idle_secs: u64,
        unused_for_secs: u64,
        /// Images listed without a parent (only those can hold a record): each holds at
        /// most one record per depth.
        images: usize,
    },
    // ---- keep ----
    /// Held by a running build (the engine never deletes it).
    InUse,
    /// A record that builds on this one stays (the engine refuses to delete a parent).
    ParentOfKept { child: String },
    /// Also used by an image, and the rule that selects its type excludes shared records.
    Shared { rule: Arc<str> },
    /// Used more recently than the rule's `unused_for`.
    UsedRecently {
        rule: Arc<str>,
        idle_secs: u64,
        unused_for_secs: u64,
    },
    /// The rule's records fit in `keep_storage`.
    WithinKeepStorage {
        rule: Arc<str>,
        total_bytes: u64,
        keep_storage: u64,
    },
    /// The engine gave neither a last-use nor a creation time: its age is unknown.
    UnknownLastUse { rule: Arc<str> },
    // ---- untouched ----
    /// No `build_cache:` rule selects the record's type.
    NoRuleMatches,
}

impl CacheReason {
    /// The action this reason leads to.
    #[must_use]
    pub fn action(&self) -> Action {
        match self {
            Self::UnusedFor { .. } | Self::UnheldShared { .. } | Self::OverKeepStorage { .. } => {
                Action::Delete
            }
            Self::NoRuleMatches => Action::Untouched,
            _ => Action::Keep,
        }
    }

    /// The stable `snake_case` kind, as in JSON and metrics labels.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnusedFor { .. } => "unused_for",
            Self::OverKeepStorage { .. } => "over_keep_storage",
            Self::UnheldShared { .. } => "unheld_shared",
            Self::InUse => "in_use",
            Self::ParentOfKept { .. } => "parent_of_kept",
            Self::Shared { .. } => "shared",
            Self::UsedRecently { .. } => "used_recently",
            Self::WithinKeepStorage { .. } => "within_keep_storage",
            Self::UnknownLastUse { .. } => "unknown_last_use",
            Self::NoRuleMatches => "no_rule_matches",
        }
    }
}

impl fmt::Display for CacheReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnusedFor {
                rule,
                idle_secs,
                unused_for_secs,
            } => write!(
                f,
                "matched {rule}, unused for {} >= unused_for {}",
                fmt_age(*idle_secs),
                fmt_duration(*unused_for_secs)
            ),
            Self::OverKeepStorage {
                rule,
                total_bytes,
                keep_storage,
            } => write!(
                f,
                "matched {rule}, least recently used while {} > keep_storage {}",
                fmt_bytes(*total_bytes),
                fmt_bytes(*keep_storage)
            ),
            Self::UnheldShared {
                rule,
                idle_secs,
                unused_for_secs,
                images,
            } => write!(
                f,
                "matched {rule}, unused for {} >= unused_for {}; claims shared, but more \
                 recently used shared records at its depth already take all {images} images \
                 without a parent",
                fmt_age(*idle_secs),
                fmt_duration(*unused_for_secs)
            ),
            Self::InUse => f.write_str("in use by a running build"),
            Self::ParentOfKept { child } => write!(f, "parent of kept record {child}"),
            Self::Shared { rule } => {
                write!(f, "shared with an image; {rule} excludes shared records")
            }
            Self::UsedRecently {
                rule,
                idle_secs,
                unused_for_secs,
            } => write!(
                f,
                "matched {rule}, used {} ago < unused_for {}",
                fmt_age(*idle_secs),
                fmt_duration(*unused_for_secs)
            ),
            Self::WithinKeepStorage {
                rule,
                total_bytes,
                keep_storage,
            } => write!(
                f,
                "matched {rule}, {} within keep_storage {}",
                fmt_bytes(*total_bytes),
                fmt_bytes(*keep_storage)
            ),
            Self::UnknownLastUse { rule } => {
                write!(f, "matched {rule}, but the engine gave no time of last use")
            }
            Self::NoRuleMatches => f.write_str("no build_cache rule selects its type"),
        }
    }
}
