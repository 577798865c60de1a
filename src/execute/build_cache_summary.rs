//! Counts over one pass's build cache section, beside the image summary.

use std::collections::BTreeMap;

use serde::Serialize;

use super::build_cache::{CacheOutcome, CacheResult};
use crate::inventory::CacheRecord;
use crate::plan::Action;
use crate::plan::build_cache::CachePlan;

/// Build cache counts of one pass (`summary.build_cache` in JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheSummary {
    /// Records the engine listed.
    pub records: usize,
    /// Bytes they take (shared records included, as the engine counts them).
    pub total_bytes: u64,
    /// Records held by a running build.
    pub in_use: usize,
    pub deleted: usize,
    /// Bytes the engine says it freed.
    pub reclaimed_bytes: u64,
    pub kept: usize,
    pub untouched: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Planned but not attempted (stop requested).
    pub not_attempted: usize,
    pub deleted_by_rule: BTreeMap<String, usize>,
    pub bytes_by_rule: BTreeMap<String, u64>,
    /// Kept records by reason kind (`in_use`, `shared`, …) plus `skipped`.
    pub kept_by_reason: BTreeMap<String, usize>,
    /// Why the section was skipped (no build cache, or it could not be read); else `None`.
    pub notice: Option<String>,
}

/// Count a build cache plan and its outcomes.
#[must_use]
pub fn summarize(
    records: &[CacheRecord],
    plan: &CachePlan,
    results: &[CacheResult],
    notice: Option<&str>,
) -> CacheSummary {
    let mut s = CacheSummary {
        records: records.len(),
        total_bytes: plan.total_bytes,
        in_use: records.iter().filter(|r| r.in_use).count(),
        notice: notice.map(str::to_owned),
        ..CacheSummary::default()
    };
    for d in &plan.decisions {
        match d.action {
            Action::Keep => {
                s.kept += 1;
                *s.kept_by_reason
                    .entry(d.reason.kind().to_owned())
                    .or_default() += 1;
            }
            Action::Untouched => s.untouched += 1,
            Action::Delete => {}
        }
    }
    for r in results {
        let rule = plan.decisions[r.decision].rule.as_deref().unwrap_or("");
        match &r.outcome {
            CacheOutcome::Deleted => {
                s.deleted += 1;
                s.reclaimed_bytes += r.bytes;
                *s.deleted_by_rule.entry(rule.to_owned()).or_default() += 1;
                *s.bytes_by_rule.entry(rule.to_owned()).or_default() += r.bytes;
            }
            CacheOutcome::Skipped { .. } => {
                s.skipped += 1;
                *s.kept_by_reason.entry("skipped".to_owned()).or_default() += 1;
            }
            CacheOutcome::Failed { .. } => s.failed += 1,
            CacheOutcome::NotAttempted => s.not_attempted += 1,
        }
    }
    s
}
