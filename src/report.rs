//! Rendering a pass: text tables, the summary line and the JSON document.
//!
//! Pure formatting of a [`PassReport`]; nothing here talks to Docker or decides.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use serde::Serialize;

use crate::builds::{self, BuildWait, GateOutcome};
use crate::execute::{DeletionResult, Outcome};
use crate::inventory::{Image, ImageId};
use crate::pass::{PassReport, Summary};
use crate::plan::{Action, Reason, fmt_age};
use crate::units::fmt_bytes;

/// Version of the JSON document's layout; bumped on incompatible changes.
pub const JSON_VERSION: u32 = 1;

/// The one-line summary of a pass.
#[must_use]
pub fn summary_line(s: &Summary, planned_bytes: u64, planned: usize) -> String {
    if s.dry_run {
        return format!(
            "dry run: would delete {planned} images, reclaim ~{}, keep {}, leave {} untouched; nothing changed in {:.1}s",
            fmt_bytes(planned_bytes),
            s.kept,
            s.untouched,
            s.duration_secs
        );
    }
    if s.deferred > 0 {
        return format!(
            "deferred {} deletions: a build is in progress; deleted nothing, kept {}, \
             leave {} untouched in {:.1}s",
            s.deferred, s.kept, s.untouched, s.duration_secs
        );
    }
    let mut line = format!("deleted {} images", s.deleted_total);
    if s.cascaded > 0 {
        let _ = write!(line, " ({} in cascade)", s.cascaded);
    }
    let _ = write!(
        line,
        ", reclaimed {}, kept {}, skipped {}, failed {}",
        fmt_bytes(s.reclaimed_bytes),
        s.kept,
        s.skipped,
        s.failed
    );
    if s.already_gone > 0 {
        let _ = write!(line, ", already gone {}", s.already_gone);
    }
    if s.not_attempted > 0 {
        let _ = write!(line, ", not attempted {} (stopping)", s.not_attempted);
    }
    if let Some(waited) = s.build_wait_secs.filter(|w| *w > 0.0) {
        let _ = write!(line, ", after waiting {} for builds", fmt_waited(waited));
    }
    let _ = write!(line, " in {:.1}s", s.duration_secs);
    line
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // rounded, non-negative seconds
fn fmt_waited(secs: f64) -> String {
    fmt_age(secs.round() as u64)
}

/// Why the deletions of a report were held back and not attempted, when they were.
#[must_use]
pub fn held_back(report: &PassReport) -> Option<String> {
    let wait = report.builds.as_ref()?;
    let why = match wait.outcome {
        GateOutcome::Clear => return None,
        GateOutcome::NoWait => "not waiting (--no-wait)".to_owned(),
        GateOutcome::Expired => format!(
            "gave up after {} (builds.max_defer)",
            fmt_waited(wait.waited_secs)
        ),
        GateOutcome::Stopped => "stopped while waiting".to_owned(),
    };
    Some(format!("{}, {why}", builds::detect::describe(&wait.builds)))
}

/// The summary line of a report (with what held its deletions back, if anything did).
#[must_use]
pub fn report_summary_line(report: &PassReport) -> String {
    let line = summary_line(
        &report.summary,
        report.plan.reclaimable_bytes,
        report.plan.deletions.len(),
    );
    match held_back(report) {
        Some(why) => format!("{line}; {why}"),
        None => line,
    }
}

/// Text output: a table of deletions (all decisions with `all`), then the summary line.
#[must_use]
pub fn render_text(report: &PassReport, now: DateTime<Utc>, all: bool) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    let mut header = vec![
        "IMAGE",
        "REFERENCES",
        "AGE",
        "SIZE",
        "ACTION",
        "POLICY",
        "REASON",
    ];
    let executed = !report.summary.dry_run;
    if executed {
        header.push("OUTCOME");
    }
    table.set_header(header);
    let outcomes = outcome_by_decision(report);
    let deferred = held_back(report).is_some();
    let mut rows = 0;
    for (i, d) in report
        .plan
        .order
        .iter()
        .map(|&i| (i, &report.plan.decisions[i]))
    {
        if !all && d.action != Action::Delete {
            continue;
        }
        let image = &report.inventory.images[d.image];
        let mut row = vec![
            image.id.short(),
            if image.references.is_empty() {
                "<none>".to_owned()
            } else {
                image.references.join(", ")
            },
            fmt_age(age_secs(image, now)),
            fmt_bytes(image.size),
            d.action.to_string(),
            d.policy.as_deref().unwrap_or("-").to_owned(),
            d.reason.to_string(),
        ];
        if executed {
            row.push(match outcomes[i] {
                Some(r) => outcome_text(&r.outcome),
                None if deferred && d.action == Action::Delete => DEFERRED_TEXT.to_owned(),
                None => String::new(),
            });
        }
        table.add_row(row);
        rows += 1;
    }
    let mut out = String::new();
    if rows > 0 {
        out.push_str(&table.to_string());
        out.push('\n');
    }
    out.push_str(&report_summary_line(report));
    out.push('\n');
    out
}

fn outcome_by_decision(report: &PassReport) -> Vec<Option<&DeletionResult>> {
    let mut v = vec![None; report.plan.decisions.len()];
    for r in &report.results {
        v[r.decision] = Some(r);
    }
    v
}

fn age_secs(image: &Image, now: DateTime<Utc>) -> u64 {
    u64::try_from((now - image.created).num_seconds()).unwrap_or(0)
}

/// Short text for an outcome.
#[must_use]
pub fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Deleted => "deleted".to_owned(),
        Outcome::DeletedInCascade { child } => format!("deleted in cascade of {child}"),
        Outcome::AlreadyGone => "already gone".to_owned(),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
        Outcome::Failed { error } => format!("failed: {error}"),
        Outcome::NotAttempted => "not attempted (stopping)".to_owned(),
    }
}

/// The outcome text of a planned deletion that a build held back.
const DEFERRED_TEXT: &str = "deferred: build in progress";

/// The JSON document (`--output json`). Field names are stable; see the README.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub version: u32,
    pub dry_run: bool,
    pub summary: &'a Summary,
    pub reclaimable_bytes: u64,
    /// How the deletions waited for builds; null when the pass did not ask.
    pub builds: Option<&'a BuildWait>,
    pub images: Vec<JsonImage<'a>>,
}

/// An image's outcome in the JSON document: what execution did, or why it did not run.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum JsonOutcome<'a> {
    Executed(&'a Outcome),
    /// `{"kind": "deferred", "reason": "build_in_progress"}`.
    Deferred {
        kind: &'static str,
        reason: &'static str,
    },
}

impl JsonOutcome<'_> {
    const DEFERRED: Self = JsonOutcome::Deferred {
        kind: "deferred",
        reason: "build_in_progress",
    };
}

/// One image in the JSON document.
#[derive(Debug, Serialize)]
pub struct JsonImage<'a> {
    pub id: ImageId,
    pub references: &'a [String],
    pub created: DateTime<Utc>,
    pub age_secs: u64,
    pub size: u64,
    pub action: Action,
    pub policy: Option<&'a str>,
    pub reason: &'a Reason,
    pub reason_text: String,
    /// Present for planned deletions once executed, or held back by a build.
    pub outcome: Option<JsonOutcome<'a>>,
    pub reclaimed_bytes: u64,
}

/// Build the JSON document of a report.
#[must_use]
pub fn to_json(report: &PassReport, now: DateTime<Utc>) -> JsonReport<'_> {
    let outcomes = outcome_by_decision(report);
    let deferred = held_back(report).is_some();
    let images = report
        .plan
        .order
        .iter()
        .map(|&i| (&report.plan.decisions[i], outcomes[i]))
        .map(|(d, r)| (d, &report.inventory.images[d.image], r))
        .map(|(d, image, r)| JsonImage {
            id: image.id,
            references: &image.references,
            created: image.created,
            age_secs: age_secs(image, now),
            size: image.size,
            action: d.action,
            policy: d.policy.as_deref(),
            reason: &d.reason,
            reason_text: d.reason.to_string(),
            outcome: match r {
                Some(r) => Some(JsonOutcome::Executed(&r.outcome)),
                None if deferred && d.action == Action::Delete => Some(JsonOutcome::DEFERRED),
                None => None,
            },
            reclaimed_bytes: r.map_or(0, |r| r.bytes),
        })
        .collect();
    JsonReport {
        version: JSON_VERSION,
        dry_run: report.summary.dry_run,
        summary: &report.summary,
        reclaimable_bytes: report.plan.reclaimable_bytes,
        builds: report.builds.as_ref(),
        images,
    }
}
