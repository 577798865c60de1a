//! A pass as text: the table of decisions (with outcomes once executed), the summary line,
//! the build cache table and lines, and the host hint.
//!
//! Pure formatting of a [`PassReport`]; nothing here talks to Docker or decides.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};

use super::build_cache;
use crate::builds::{self, GateOutcome};
use crate::execute::{DeletionResult, Outcome, Summary};
use crate::inventory::Image;
use crate::pass::PassReport;
use crate::plan::{Action, fmt_age, image_age};
use crate::units::fmt_bytes;

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
        ", reclaimed {}, kept {}, skipped {}, failed {}",
        reclaimed_text(s, estimate),
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
    if s.unplanned_removals > 0 {
        let _ = write!(
            line,
            ", UNPLANNED REMOVALS {} (another actor changed a tag meanwhile; see the log)",
            s.unplanned_removals
        );
    }
    if let Some(waited) = s.build_wait_secs.filter(|w| *w > 0.0) {
        let _ = write!(line, ", after waiting {} for builds", fmt_waited(waited));
    }
    let _ = write!(line, " in {:.1}s", s.duration_secs);
    line
}

/// The bytes a pass freed, saying where the figure comes from: `26.4 MB (measured on
/// /var/lib/docker; estimated 33.6 MB)`, or `~33.6 MB (estimate)` with what the build cache
/// still holds of the deleted images' layers; `estimate` carries the note on missing
/// layer-sharing data (empty when there is none).
fn reclaimed_text(s: &Summary, estimate: &str) -> String {
    let held = s.held_by_build_cache_bytes;
    let held = (held > 0).then(|| {
        format!(
            "{} of their layers stay in the build cache until it goes",
            fmt_bytes(held)
        )
    });
    if let (Some(bytes), Some(on)) = (s.measured_bytes, &s.measured_on) {
        let mut text = format!(
            "{} (measured on {on}; estimated {}",
            fmt_bytes(bytes),
            fmt_bytes(s.estimated_bytes)
        );
        if let Some(h) = &held {
            let _ = write!(text, "; {h}");
        }
        text.push(')');
        return text;
    }
    if s.deleted == 0 {
        return fmt_bytes(0);
    }
    let note = estimate
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')');
    let note = if note.is_empty() { "estimate" } else { note };
    match held {
        Some(h) => format!("~{} ({note}; {h})", fmt_bytes(s.reclaimed_bytes)),
        None => format!("~{} ({note})", fmt_bytes(s.reclaimed_bytes)),
    }
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
        build_cache::summary_line(
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
    if let Some(line) = super::eviction::line(report) {
        out.push_str(&line);
        out.push('\n');
    }
    let records = report.cache_records();
    if let Some(t) = build_cache::table(&report.cache, records, now, shown, executed) {
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

pub(super) fn outcome_by_decision(report: &PassReport) -> Vec<Option<&DeletionResult>> {
    let mut v = vec![None; report.plan.decisions.len()];
    for r in &report.results {
        v[r.decision] = Some(r);
    }
    v
}

/// The age the planner used, in seconds; `None` when it cannot be told.
pub(super) fn age_secs(image: &Image, now: DateTime<Utc>) -> Option<u64> {
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
