//! Human rendering of the reasons that come from the history and the disk.

use std::fmt;

use chrono::{DateTime, Utc};

use super::reason::Reason;
use super::watermarks::DiskFigures;
use crate::units::{fmt_age, fmt_bytes, fmt_duration};

/// `2026-05-01 12:00`.
fn day(t: DateTime<Utc>) -> impl fmt::Display {
    t.format("%Y-%m-%d %H:%M")
}

/// `disk space at 91.2% >= high 85% on /var/lib/docker`.
fn figures(d: &DiskFigures) -> String {
    let cmp = if d.over_high() { ">=" } else { "<" };
    format!(
        "disk {} at {}.{}% {cmp} high {}% on {}",
        d.resource,
        d.used_permille / 10,
        d.used_permille % 10,
        d.high_percent,
        d.measured
    )
}

/// Render a history or disk reason (the other kinds are rendered in `text`).
pub(super) fn fmt(reason: &Reason, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match reason {
        Reason::UnusedFor {
            policy,
            last_used,
            last_used_by,
            idle_secs,
            unused_for_secs,
        } => write!(
            f,
            "matched {policy}, last used {} ago ({}, {}) > unused_for {}",
            fmt_age(*idle_secs),
            day(*last_used),
            last_used_by.as_str(),
            fmt_duration(*unused_for_secs)
        ),
        Reason::UsedRecently {
            policy,
            last_used,
            last_used_by,
            idle_secs,
            unused_for_secs,
        } => write!(
            f,
            "matched {policy}, last used {} ago ({}, {}): within unused_for {}",
            fmt_age(*idle_secs),
            day(*last_used),
            last_used_by.as_str(),
            fmt_duration(*unused_for_secs)
        ),
        Reason::ArrivedRecently {
            policy,
            first_seen,
            first_seen_by,
            age_secs,
            min_age_secs,
        } => write!(
            f,
            "matched {policy}, first seen {} ago ({}, {}): younger than min_age {}",
            fmt_age(*age_secs),
            day(*first_seen),
            first_seen_by.as_str(),
            fmt_duration(*min_age_secs)
        ),
        Reason::DiskPressure {
            policy,
            last_used,
            last_used_by,
            disk,
            ranked,
        } => {
            write!(f, "matched {policy}, {}: evicted ", figures(disk))?;
            match ranked {
                Some(r) => write!(f, "by {r}")?,
                None => f.write_str("least recently used first")?,
            }
            if let (Some(at), Some(by)) = (last_used, last_used_by) {
                write!(f, " (last used {}, {})", day(*at), by.as_str())?;
            }
            write!(
                f,
                " until low {}% ({} to free)",
                disk.low_percent,
                fmt_bytes(disk.to_free_bytes)
            )
        }
        Reason::NoDiskPressure { policy, disk } if disk.over_high() => write!(
            f,
            "matched {policy}, {}, but evicting less recently used images reaches low {}%",
            figures(disk),
            disk.low_percent
        ),
        Reason::NoDiskPressure { policy, disk } => {
            write!(f, "matched {policy}, {}: no disk pressure", figures(disk))
        }
        Reason::DiskNotMeasured { policy, error } => {
            write!(f, "matched {policy}, when disk_pressure, but {error}")
        }
        // The other kinds are rendered in `text`; their kind is a safe stand-in.
        other => f.write_str(other.kind()),
    }
}
