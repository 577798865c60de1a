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
                rank,
            } => keep_last_rank(f, policy, *rank, group, "beyond", *keep_last),
            Reason::ParentOfDeleted { child, policy } => {
                write!(
                    f,
                    "parent of deleted image {child} ({policy}, parents: delete)"
                )
            }
            Reason::OverSizeBudget {
                policy,
                group,
                group_bytes,
                max_total_size,
                ranked,
            } => {
                write!(
                    f,
                    "matched {policy}, group {group} totals {} > max_total_size {}",
                    fmt_bytes(*group_bytes),
                    fmt_bytes(*max_total_size)
                )?;
                match ranked {
                    Some(r) => write!(f, " ({r})"),
                    None => Ok(()),
                }
            }
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
                rank,
            } => keep_last_rank(f, policy, *rank, group, "within", *keep_last),
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

/// "matched app, 4th newest by build or tag time in group all: beyond `keep_last` 3". A plan
/// file from before ranks were recorded reads rank 0: the rank is then left out.
fn keep_last_rank(
    f: &mut fmt::Formatter<'_>,
    policy: &str,
    rank: usize,
    group: &str,
    side: &str,
    keep_last: usize,
) -> fmt::Result {
    if rank == 0 {
        return write!(
            f,
            "matched {policy}, {side} the {keep_last} newest in group {group}"
        );
    }
    write!(
        f,
        "matched {policy}, {} newest by build or tag time in group {group}: {side} keep_last {keep_last}",
        ordinal(rank)
    )
}

/// `1st`, `2nd`, `3rd`, `4th`, … `11th`, `12th`, `13th`, `21st`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::ordinal;

    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        let want = [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st",
            "111th",
        ];
        assert_eq!(got, want);
    }
}
