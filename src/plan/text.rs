//! Human rendering of reasons, ages and durations.

use std::fmt;

use bytesize::ByteSize;

use super::{Action, Reason};

/// An age, rounded to one unit: `45s`, `12m`, `49h`, `9d`.
#[must_use]
pub fn fmt_age(secs: u64) -> String {
    match secs {
        0..100 => format!("{secs}s"),
        100..6000 => format!("{}m", secs / 60),
        6000..360_000 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// A configured duration as people write it: `90s`, `15m`, `24h`, `36h`, `7d`.
#[must_use]
pub fn fmt_duration(secs: u64) -> String {
    match secs {
        s if s > 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn bytes(n: u64) -> String {
    ByteSize(n).display().si().to_string()
}

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
                bytes(*group_bytes),
                bytes(*max_total_size)
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
        }
    }
}
