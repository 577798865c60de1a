//! Rendering the build cache section of a pass: a text table, a summary line and the JSON
//! object. Pure formatting; nothing here talks to the engine or decides.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};

use crate::execute::{CacheOutcome, CacheResult, CacheSummary};
use crate::inventory::CacheRecord;
use crate::pass::CacheReport;
use crate::plan::Action;
use crate::plan::build_cache::CacheReason;
use crate::plan_file::{FileCache, FileRecord};
use crate::units::{fmt_age, fmt_bytes};

/// Longest description shown in the text table (JSON has it whole).
const DESCRIPTION_CHARS: usize = 48;

/// The build cache summary line.
#[must_use]
pub fn summary_line(s: &CacheSummary, planned: usize, planned_bytes: u64, dry_run: bool) -> String {
    if let Some(notice) = &s.notice {
        return format!("build cache: {notice}");
    }
    let of = fmt_bytes(s.total_bytes);
    if dry_run {
        return format!(
            "build cache: would delete {planned} records, reclaim ~{} of {of}, keep {}, leave {} untouched",
            fmt_bytes(planned_bytes),
            s.kept,
            s.untouched
        );
    }
    let mut line = format!(
        "build cache: deleted {} records, reclaimed {} of {of}, kept {}, skipped {}, failed {}",
        s.deleted,
        fmt_bytes(s.reclaimed_bytes),
        s.kept,
        s.skipped,
        s.failed
    );
    if s.not_attempted > 0 {
        let _ = write!(line, ", not attempted {} (stopping)", s.not_attempted);
    }
    line
}

/// The table of the record decisions whose action is in `shown`, or nothing when empty.
#[must_use]
pub fn table(
    report: &CacheReport,
    records: &[CacheRecord],
    now: DateTime<Utc>,
    shown: &[Action],
    executed: bool,
) -> Option<String> {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    let mut header = vec![
        "CACHE RECORD",
        "TYPE",
        "DESCRIPTION",
        "LAST USED",
        "USES",
        "HELD BY",
        "SIZE",
        "ACTION",
        "RULE",
        "REASON",
    ];
    if executed {
        header.push("OUTCOME");
    }
    table.set_header(header);
    let outcomes = outcome_by_decision(report);
    let mut rows = 0;
    for &i in &report.plan.order {
        let d = &report.plan.decisions[i];
        if !shown.contains(&d.action) {
            continue;
        }
        let r = &records[d.record];
        let mut row = vec![
            r.short_id().to_owned(),
            r.kind.to_string(),
            shorten(&r.description),
            idle_secs(r, now).map_or_else(|| "?".to_owned(), |s| format!("{} ago", fmt_age(s))),
            r.usage_count.to_string(),
            held_by(r, &d.reason).to_owned(),
            fmt_bytes(r.size),
            d.action.to_string(),
            d.rule.as_deref().unwrap_or("-").to_owned(),
            d.reason.to_string(),
        ];
        if executed {
            row.push(outcomes[i].map_or_else(String::new, |o| outcome_text(&o.outcome)));
        }
        table.add_row(row);
        rows += 1;
    }
    (rows > 0).then(|| table.to_string())
}

/// Who else holds the record: a running build, an image, or nobody (also when it claims an
/// image but none can hold it: `unheld_shared`).
fn held_by(r: &CacheRecord, reason: &CacheReason) -> &'static str {
    let unheld = matches!(reason, CacheReason::UnheldShared { .. });
    match (r.in_use, r.shared && !unheld) {
        (true, true) => "build, image",
        (true, false) => "build",
        (false, true) => "image",
        (false, false) => "-",
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= DESCRIPTION_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(DESCRIPTION_CHARS - 1).collect();
    format!("{cut}…")
}

fn idle_secs(r: &CacheRecord, now: DateTime<Utc>) -> Option<u64> {
    r.last_touched()
        .map(|t| u64::try_from((now - t).num_seconds()).unwrap_or(0))
}

fn outcome_by_decision(report: &CacheReport) -> Vec<Option<&CacheResult>> {
    let mut v = vec![None; report.plan.decisions.len()];
    for r in &report.results {
        v[r.decision] = Some(r);
    }
    v
}

/// Short text for an outcome.
#[must_use]
pub fn outcome_text(o: &CacheOutcome) -> String {
    match o {
        CacheOutcome::Deleted => "deleted".to_owned(),
        CacheOutcome::Skipped { reason } => format!("skipped: {reason}"),
        CacheOutcome::Failed { error } => format!("failed: {error}"),
        CacheOutcome::NotAttempted => "not attempted (stopping)".to_owned(),
    }
}

/// The JSON object of the build cache section, records in plan order.
#[must_use]
pub fn to_json<'a>(
    report: &'a CacheReport,
    records: &'a [CacheRecord],
    now: DateTime<Utc>,
    shown: &[Action],
) -> FileCache<'a> {
    let outcomes = outcome_by_decision(report);
    let mut wave = vec![None; report.plan.decisions.len()];
    for d in &report.plan.deletions {
        wave[d.decision] = Some(d.wave);
    }
    let records = (report.plan.order.iter())
        .map(|&i| (&report.plan.decisions[i], outcomes[i], wave[i]))
        .filter(|(d, _, _)| shown.contains(&d.action))
        .map(|(d, o, wave)| {
            let r = &records[d.record];
            FileRecord {
                id: Cow::Borrowed(&r.id),
                kind: Cow::Borrowed(&r.kind),
                description: Cow::Borrowed(&r.description),
                parents: Cow::Borrowed(&r.parents),
                size: r.size,
                created: r.created,
                last_used: r.last_used,
                idle_secs: idle_secs(r, now),
                usage_count: r.usage_count,
                shared: r.shared,
                in_use: r.in_use,
                action: d.action,
                rule: d.rule.as_deref().map(Cow::Borrowed),
                reason: Cow::Borrowed(&d.reason),
                reason_text: d.reason.to_string(),
                wave,
                outcome: o.map(|o| &o.outcome),
                reclaimed_bytes: o.map_or(0, |o| o.bytes),
            }
        })
        .collect();
    FileCache {
        notice: report.notice.as_deref().map(Cow::Borrowed),
        total_bytes: report.plan.total_bytes,
        reclaimable_bytes: report.plan.reclaimable_bytes,
        records,
    }
}
