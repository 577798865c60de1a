//! Rendering a pass: text tables, the summary line and the JSON document.
//!
//! Pure formatting of a [`PassReport`]; nothing here talks to Docker or decides.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use serde::Serialize;

use crate::cache::{self, render::JsonCache};
use crate::execute::{DeletionResult, Outcome};
use crate::inventory::{Image, ImageId};
use crate::pass::{PassReport, Summary};
use crate::plan::{Action, Reason, fmt_age, image_age};
use crate::units::fmt_bytes;

/// Version of the JSON document's layout; bumped on incompatible changes. Version 2: the
/// engine ID and plan time (a plan file for `apply`), digests, parents, tag times, waves and
/// estimates per deletion; `untagged_only` outcomes; no cascades.
pub const JSON_VERSION: u32 = 2;

/// How byte figures are qualified when the engine gave no layer-sharing data.
pub const NO_SHARING_DATA: &str = " (estimate: the engine gave no layer-sharing data)";

/// The one-line summary of a pass. Without `sharing_data` the bytes are called an estimate.
#[must_use]
pub fn summary_line(s: &Summary, planned_bytes: u64, planned: usize, sharing_data: bool) -> String {
    let estimate = if sharing_data { "" } else { NO_SHARING_DATA };
    if s.dry_run {
        return format!(
            "dry run: would delete {planned} images, reclaim ~{}{estimate}, keep {}, leave {} untouched; nothing changed in {:.1}s",
            fmt_bytes(planned_bytes),
            s.kept,
            s.untouched,
            s.duration_secs
        );
    }
    let mut line = format!("deleted {} images", s.deleted);
    let _ = write!(
        line,
        ", reclaimed {}{estimate}, kept {}, skipped {}, failed {}",
        fmt_bytes(s.reclaimed_bytes),
        s.kept,
        s.skipped,
        s.failed
    );
    if s.untagged_only > 0 {
        let _ = write!(line, ", untagged only {}", s.untagged_only);
    }
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
        report.plan.sharing_data,
    )
}

/// The build cache summary line of a report, when the pass saw a build cache (or a notice).
#[must_use]
pub fn cache_summary_line(report: &PassReport) -> Option<String> {
    let s = &report.summary.build_cache;
    let shown = s.records > 0 || s.notice.is_some() || !report.cache.results.is_empty();
    shown.then(|| {
        cache::render::summary_line(
            s,
            report.cache.plan.deletions.len(),
            report.cache.plan.reclaimable_bytes,
            report.summary.dry_run,
        )
    })
}

/// Text output: a table of deletions (all decisions with `all`), then the summary line.
/// Ages are as of the plan's time.
#[must_use]
pub fn render_text(report: &PassReport, all: bool) -> String {
    let now = report.planned_at;
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
            if image.references.is_empty() {
                "<none>".to_owned()
            } else {
                image.references.join(", ")
            },
            age_secs(image, now).map_or_else(|| "?".to_owned(), fmt_age),
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
    let records = report.cache_records();
    if let Some(t) = cache::render::table(&report.cache, records, now, all, executed) {
        out.push_str(&t);
        out.push('\n');
    }
    for line in cache_summary_line(report).iter().chain(&report.host_hint) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn outcome_by_decision(report: &PassReport) -> Vec<Option<&DeletionResult>> {
    let mut v = vec![None; report.plan.decisions.len()];
    for r in &report.results {
        v[r.decision] = Some(r);
    }
    v
}

/// The age the planner used, in seconds; `None` when it cannot be told.
fn age_secs(image: &Image, now: DateTime<Utc>) -> Option<u64> {
    image_age(image, now).map(|a| a.as_secs())
}

/// Short text for an outcome.
#[must_use]
pub fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Deleted => "deleted".to_owned(),
        Outcome::UntaggedOnly { untagged } => {
            format!("untagged only ({}): image kept", untagged.join(", "))
        }
        Outcome::AlreadyGone => "already gone".to_owned(),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
        Outcome::Failed { error } => format!("failed: {error}"),
        Outcome::NotAttempted => "not attempted (stopping)".to_owned(),
    }
}

/// The JSON document (`--output json`). Field names are stable; see the README. It is also
/// the plan file that `stagesweep apply` reads.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub version: u32,
    pub dry_run: bool,
    /// The engine the plan was made for (`/info` ID).
    pub engine_id: &'a str,
    /// The time the plan was made for, on the engine's clock.
    pub planned_at: DateTime<Utc>,
    pub summary: &'a Summary,
    pub reclaimable_bytes: u64,
    /// False when the engine gave no layer-sharing data: byte figures are then estimates
    /// that may count a shared base more than once.
    pub sharing_data: bool,
    pub images: Vec<JsonImage<'a>>,
    pub build_cache: JsonCache<'a>,
    /// "Say what the host needs", when there is something to say.
    pub host_hint: Option<&'a str>,
}

/// One image in the JSON document.
#[derive(Debug, Serialize)]
pub struct JsonImage<'a> {
    pub id: ImageId,
    pub references: &'a [String],
    pub digests: &'a [String],
    pub parent_id: Option<ImageId>,
    pub created: DateTime<Utc>,
    pub last_tagged: Option<DateTime<Utc>>,
    /// The age the planner used; `None` when it cannot be told (`unknown_age`).
    pub age_secs: Option<u64>,
    pub size: u64,
    pub action: Action,
    pub policy: Option<&'a str>,
    pub reason: &'a Reason,
    pub reason_text: String,
    /// For planned deletions: the execution wave (children before parents).
    pub wave: Option<usize>,
    /// For planned deletions: the estimated bytes the deletion frees.
    pub reclaimable_bytes: Option<u64>,

    /// Present for planned deletions once executed.
    pub outcome: Option<&'a Outcome>,
    pub reclaimed_bytes: u64,
}

/// Build the JSON document of a report.
#[must_use]
pub fn to_json(report: &PassReport) -> JsonReport<'_> {
    let now = report.planned_at;
    let outcomes = outcome_by_decision(report);
    let mut deletion = vec![None; report.plan.decisions.len()];
    for d in &report.plan.deletions {
        deletion[d.decision] = Some(d);
    }
    let images = report
        .plan
        .order
        .iter()
        .map(|&i| (&report.plan.decisions[i], outcomes[i], deletion[i]))
        .map(|(d, r, del)| {
            let image = &report.inventory.images[d.image];
            JsonImage {
                id: image.id,
                references: &image.references,
                digests: &image.digests,
                parent_id: image.parent_id,
                created: image.created,
                last_tagged: image.last_tagged,
                age_secs: age_secs(image, now),
                size: image.size,
                action: d.action,
                policy: d.policy.as_deref(),
                reason: &d.reason,
                reason_text: d.reason.to_string(),
                wave: del.map(|x| x.wave),
                reclaimable_bytes: del.map(|x| x.reclaim_bytes),
                outcome: r.map(|r| &r.outcome),
                reclaimed_bytes: r.map_or(0, |r| r.bytes),
            }
        })
        .collect();
    JsonReport {
        version: JSON_VERSION,
        dry_run: report.summary.dry_run,
        engine_id: &report.engine_id,
        planned_at: report.planned_at,
        summary: &report.summary,
        reclaimable_bytes: report.plan.reclaimable_bytes,
        sharing_data: report.plan.sharing_data,
        images,
        build_cache: cache::render::to_json(&report.cache, report.cache_records(), now),
        host_hint: report.host_hint.as_deref(),
    }
}
