//! Rendering a pass: text tables, the summary line and the JSON document.
//!
//! Pure formatting of a [`PassReport`]; nothing here talks to Docker or decides.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use serde::Serialize;

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
    let _ = write!(line, " in {:.1}s", s.duration_secs);
    line
}

/// The summary line of a report.
#[must_use]
pub fn report_summary_line(report: &PassReport) -> String {
    summary_line(
        &report.summary,
        report.plan.reclaimable_bytes,
        report.plan.deletions.len(),
    )
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
            references_cell(image),
            fmt_age(age_secs(image, now)),
            fmt_bytes(image.size),
            d.action.to_string(),
            d.policy.as_deref().unwrap_or("-").to_owned(),
            d.reason.to_string(),
        ];
        if executed {
            row.push(outcomes[i].map_or_else(String::new, |r| outcome_text(&r.outcome)));
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

/// The REFERENCES cell: tags, then digests with their hex cut to 12 digits
/// (`app@sha256:3f2a1c9d8e7b…`; JSON has them in full), or `<none>` for a dangling image.
fn references_cell(image: &Image) -> String {
    if image.is_dangling() {
        return "<none>".to_owned();
    }
    image
        .references
        .iter()
        .cloned()
        .chain(image.digests.iter().map(|d| short_digest(d)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn short_digest(digest: &str) -> String {
    if let Some((repo, hex)) = digest.split_once("@sha256:")
        && hex.len() > 12
        && let Some(head) = hex.get(..12)
    {
        return format!("{repo}@sha256:{head}…");
    }
    digest.to_owned()
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

/// The JSON document (`--output json`). Field names are stable; see the README.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub version: u32,
    pub dry_run: bool,
    pub summary: &'a Summary,
    pub reclaimable_bytes: u64,
    pub images: Vec<JsonImage<'a>>,
}

/// One image in the JSON document.
#[derive(Debug, Serialize)]
pub struct JsonImage<'a> {
    pub id: ImageId,
    pub references: &'a [String],
    /// `repo@sha256:…` references (`RepoDigests`).
    pub digests: &'a [String],
    pub created: DateTime<Utc>,
    pub age_secs: u64,
    pub size: u64,
    pub action: Action,
    pub policy: Option<&'a str>,
    pub reason: &'a Reason,
    pub reason_text: String,
    /// Present for planned deletions once executed.
    pub outcome: Option<&'a Outcome>,
    pub reclaimed_bytes: u64,
}

/// Build the JSON document of a report.
#[must_use]
pub fn to_json(report: &PassReport, now: DateTime<Utc>) -> JsonReport<'_> {
    let outcomes = outcome_by_decision(report);
    let images = report
        .plan
        .order
        .iter()
        .map(|&i| (&report.plan.decisions[i], outcomes[i]))
        .map(|(d, r)| (d, &report.inventory.images[d.image], r))
        .map(|(d, image, r)| JsonImage {
            id: image.id,
            references: &image.references,
            digests: &image.digests,
            created: image.created,
            age_secs: age_secs(image, now),
            size: image.size,
            action: d.action,
            policy: d.policy.as_deref(),
            reason: &d.reason,
            reason_text: d.reason.to_string(),
            outcome: r.map(|r| &r.outcome),
            reclaimed_bytes: r.map_or(0, |r| r.bytes),
        })
        .collect();
    JsonReport {
        version: JSON_VERSION,
        dry_run: report.summary.dry_run,
        summary: &report.summary,
        reclaimable_bytes: report.plan.reclaimable_bytes,
        images,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_references_cell_shows_tags_then_short_digests() {
        let hex = "0123456789abcdef".repeat(4);
        let mut image = Image {
            id: hex.parse().expect("a valid ID"),
            parent_id: None,
            references: Vec::new(),
            digests: Vec::new(),
            labels: std::collections::BTreeMap::new(),
            created: DateTime::UNIX_EPOCH,
            last_tagged: None,
            size: 0,
        };
        assert_eq!(references_cell(&image), "<none>");
        image.digests = vec![format!("app@sha256:{hex}"), "odd@sha256:ab".into()];
        assert_eq!(
            references_cell(&image),
            "app@sha256:0123456789ab…, odd@sha256:ab"
        );
        image.references = vec!["app:1".into()];
        assert!(references_cell(&image).starts_with("app:1, app@sha256:0123456789ab…"));
        // Not hex (a daemon that sends garbage): shown as it is, never cut inside a character.
        assert_eq!(short_digest("app@sha256:x€€€€€€€€"), "app@sha256:x€€€€€€€€");
    }
}
