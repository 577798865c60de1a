//! Rendering a pass: text tables, the summary line and the JSON document.
//!
//! Pure formatting of a [`PassReport`]; nothing here talks to Docker or decides.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use serde::Serialize;

use crate::builds::{self, BuildWait, GateOutcome};
use crate::cache::{self, render::JsonCache};
use crate::disk::DiskUsage;
use crate::execute::{DeletionResult, Outcome};
use crate::history::Record;
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
    if s.deferred > 0 {
        return format!(
            "deferred {} deletions: a build is in progress; deleted nothing, kept {}, \
             leave {} untouched in {:.1}s",
            s.deferred, s.kept, s.untouched, s.duration_secs
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
        report.plan.sharing_data,
    );
    match held_back(report) {
        Some(why) => format!("{line}; {why}"),
        None => line,
    }
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

/// Every action, for listings that show all decisions.
pub const ALL_ACTIONS: [Action; 3] = [Action::Delete, Action::Keep, Action::Untouched];

/// Text output: a table of the decisions whose action is in `shown`, then the summary line
/// (which counts every decision). Ages are as of the plan's time.
#[must_use]
pub fn render_text(report: &PassReport, shown: &[Action]) -> String {
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
    let deferred = held_back(report).is_some();
    let mut rows = 0;
    for (i, d) in report
        .plan
        .order
        .iter()
        .map(|&i| (i, &report.plan.decisions[i]))
    {
        if !shown.contains(&d.action) {
            continue;
        }
        let image = &report.inventory.images[d.image];
        let mut row = vec![
            image.id.short(),
            references_cell(image),
            age_secs(image, now).map_or_else(|| "?".to_owned(), fmt_age),
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
        table.add_row(row.into_iter().map(cell));
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
    if let Some(t) = cache::render::table(&report.cache, records, now, shown, executed) {
        out.push_str(&t);
        out.push('\n');
    }
    for line in cache_summary_line(report).iter().chain(&report.host_hint) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Longest cell of the text table, in characters; JSON keeps the full values.
pub const MAX_CELL_CHARS: usize = 200;

/// A table cell cut to [`MAX_CELL_CHARS`] (with `…`): every row is padded to the widest cell
/// of its column, so one 10 MB reference from a hostile engine would otherwise make the
/// table as many times 10 MB as it has rows.
fn cell(text: String) -> String {
    match text.char_indices().nth(MAX_CELL_CHARS) {
        None => text,
        Some((cut, _)) => {
            let mut short = text[..cut].to_owned();
            short.push('…');
            short
        }
    }
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

/// The outcome text of a planned deletion that a build held back.
const DEFERRED_TEXT: &str = "deferred: build in progress";

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
    /// How the deletions waited for builds; null when the pass did not ask.
    pub builds: Option<&'a BuildWait>,
    /// The disk measurement the plan used, when a `when: disk_pressure` policy needed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<&'a DiskUsage>,
    /// False when the engine gave no layer-sharing data: byte figures are then estimates
    /// that may count a shared base more than once.
    pub sharing_data: bool,
    pub images: Vec<JsonImage<'a>>,
    pub build_cache: JsonCache<'a>,
    /// "Say what the host needs", when there is something to say.
    pub host_hint: Option<&'a str>,
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
    /// `first_seen`/`last_used` (Unix seconds) and their sources, when the history knows
    /// the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<&'a Record>,
    /// Present for planned deletions once executed, or held back by a build.
    pub outcome: Option<JsonOutcome<'a>>,
    pub reclaimed_bytes: u64,
}

/// Build the JSON document of a report; `images` lists the decisions whose action is in
/// `shown`, the summary counts all of them.
#[must_use]
pub fn to_json<'a>(report: &'a PassReport, shown: &[Action]) -> JsonReport<'a> {
    let now = report.planned_at;
    let outcomes = outcome_by_decision(report);
    let mut deletion = vec![None; report.plan.decisions.len()];
    for d in &report.plan.deletions {
        deletion[d.decision] = Some(d);
    }
    let deferred = held_back(report).is_some();
    let images = report
        .plan
        .order
        .iter()
        .map(|&i| (&report.plan.decisions[i], outcomes[i], deletion[i]))
        .filter(|(d, _, _)| shown.contains(&d.action))
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
                history: report.usage.record(d.image),
                wave: del.map(|x| x.wave),
                reclaimable_bytes: del.map(|x| x.reclaim_bytes),
                outcome: match r {
                    Some(r) => Some(JsonOutcome::Executed(&r.outcome)),
                    None if deferred && d.action == Action::Delete => Some(JsonOutcome::DEFERRED),
                    None => None,
                },
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
        builds: report.builds.as_ref(),
        disk: report.usage.disk.as_ref().and_then(|d| d.as_ref().ok()),
        sharing_data: report.plan.sharing_data,
        images,
        build_cache: cache::render::to_json(&report.cache, report.cache_records(), now, shown),
        host_hint: report.host_hint.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_cut_on_a_char_boundary() {
        assert_eq!(cell("app:1".to_owned()), "app:1");
        let exact = "é".repeat(MAX_CELL_CHARS);
        assert_eq!(cell(exact.clone()), exact);
        let long = format!("{exact}xyz");
        let cut = cell(long);
        assert_eq!(cut.chars().count(), MAX_CELL_CHARS + 1);
        assert!(cut.ends_with("é…"), "{cut}");
    }

    #[test]
    fn the_references_cell_shows_tags_then_short_digests() {
        let hex = "0123456789abcdef".repeat(4);
        let mut image = Image {
            id: hex.parse().expect("a valid ID"),
            parent_id: None,
            references: Vec::new(),
            digests: Vec::new(),
            labels: crate::inventory::Labels::new(),
            created: DateTime::UNIX_EPOCH,
            last_tagged: None,
            size: 0,
            shared_size: None,
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
