//! Human rendering of reasons, ages and durations.

use std::fmt;

use super::reason::{Action, Reason};
use super::text_usage;
use crate::units::fmt_bytes;
pub use crate::units::{fmt_age, fmt_duration};

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Delete => "delete",
            Action::Keep => "keep",
            Action::Untouched => "untouched",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Matched {
                policy,
                age_secs,
                min_age_secs,
            } => write!(
                f,
                "matched {policy}, {} old, past min_age {}",
                fmt_age(*age_secs),
                fmt_duration(*min_age_secs)
            ),
            Reason::OlderThanMaxAge {
                policy,
                age_secs,
                max_age_secs,
            } => write!(
                f,
                "matched {policy}, {} old > max_age {}",
                fmt_age(*age_secs),
                fmt_duration(*max_age_secs)
            ),
            Reason::BeyondKeepLast {
                policy,
                keep_last,
                group,
            } => write!(
                f,
                "matched {policy}, not among the {keep_last} newest in group {group}"
            ),
            Reason::OverSizeBudget {
                policy,
                group,
                group_bytes,
                max_total_size,
            } => write!(
                f,
                "matched {policy}, group {group} totals {} > max_total_size {}",
                fmt_bytes(*group_bytes),
                fmt_bytes(*max_total_size)
            ),
            Reason::InUse { container, state } => {
                write!(f, "used by container {container} ({state})")
            }
            Reason::ParentOfInUse { child, container } => {
                write!(f, "parent of {child}, used by container {container}")
            }
            Reason::ParentOfKept { child } => write!(f, "parent of kept image {child}"),
            Reason::ProtectedReference { pattern } => write!(f, "protected by reference {pattern}"),
            Reason::ProtectedLabel { predicate } => write!(f, "protected by label {predicate}"),
            Reason::UnknownAge { policy, created } => write!(
                f,
                "matched {policy}, age unknown: created {created} is not a usable time and it has no tag time"
            ),
            Reason::OtherReferences { policy, references } => write!(
                f,
                "matched {policy}, but also referenced as {} (set all_references: true to delete such images)",
                references.join(", ")
            ),
            Reason::YoungerThanMinAge {
                policy,
                age_secs,
                min_age_secs,
            } => write!(
                f,
                "matched {policy}, {} old: younger than min_age {}",
                fmt_age(*age_secs),
                fmt_duration(*min_age_secs)
            ),
            Reason::AmongNewest {
                policy,
                keep_last,
                group,
            } => write!(
                f,
                "matched {policy}, among the {keep_last} newest in group {group}"
            ),
            Reason::WithinPolicy { policy } => {
                write!(f, "matched {policy}, within its max_age and size limits")
            }
            Reason::NoPolicyMatches => f.write_str("no policy matches"),
            r @ (Reason::UnusedFor { .. }
            | Reason::UsedRecently { .. }
            | Reason::ArrivedRecently { .. }
            | Reason::DiskPressure { .. }
            | Reason::NoDiskPressure { .. }
            | Reason::DiskNotMeasured { .. }) => text_usage::fmt(r, f),
        }
    }
}
