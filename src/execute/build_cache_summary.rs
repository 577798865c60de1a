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
    /// Bytes of the records listed less those this pass deleted: what the engine holds once
    /// the pass is done (a dry run deletes nothing).
    #[serde(skip)]
    pub left_bytes: u64,
    /// The part of `left_bytes` in records shared with images.
    #[serde(skip)]
    pub left_shared_bytes: u64,
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
    let mut gone = vec![false; records.len()];
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
                if let Some(slot) = gone.get_mut(plan.decisions[r.decision].record) {
                    *slot = true;
                }
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
    for (record, _) in records.iter().zip(gone).filter(|(_, gone)| !gone) {
        s.left_bytes = s.left_bytes.saturating_add(record.size);
        if record.shared {
            s.left_shared_bytes = s.left_shared_bytes.saturating_add(record.size);
        }
    }
    s
}
