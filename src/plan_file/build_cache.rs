//! The build cache section of a plan file, read back for `stagesweep apply`: the records the plan deletes, with their reasons and waves, as a plan
//! over just those records. Executing it repeats each deletion's checks on the engine, so a
//! record used, shared or made unnecessary since the review is kept.

use std::collections::HashMap;
use std::sync::Arc;

use super::document::FileCache;
use crate::inventory::CacheRecord;
use crate::inventory::build_cache::total_bytes;
use crate::plan::Action;
use crate::plan::build_cache::{CacheDecision, CacheDeletion, CachePlan};

/// The records a plan file deletes and the plan over them, in execution order.
#[derive(Debug, Clone, Default)]
pub struct SavedCache {
    pub records: Vec<CacheRecord>,
    pub plan: CachePlan,
}

/// The file's record deletions as a plan; an inconsistent section (a deletion without a
/// delete reason or a wave, a record twice, a parent before its child) is refused.
pub fn build(file: FileCache<'_>) -> Result<SavedCache, String> {
    let mut records = Vec::new();
    let mut decisions = Vec::new();
    let mut deletions = Vec::new();
    for f in file
        .records
        .into_iter()
        .filter(|f| f.action == Action::Delete)
    {
        if f.reason.action() != Action::Delete {
            return Err(format!(
                "build cache record {} is a deletion with reason {}",
                f.id,
                f.reason.kind()
            ));
        }
        let wave = (f.wave)
            .ok_or_else(|| format!("deletion of build cache record {} has no wave", f.id))?;
        let i = records.len();
        decisions.push(CacheDecision {
            record: i,
            action: Action::Delete,
            rule: f.rule.map(|r| Arc::from(r.as_ref())),
            reason: f.reason.into_owned(),
        });
        deletions.push(CacheDeletion {
            decision: i,
            wave,
            reclaim_bytes: if f.shared { 0 } else { f.size },
        });
        records.push(CacheRecord {
            id: f.id.into_owned(),
            parents: f.parents.into_owned(),
            kind: f.kind.into_owned(),
            description: f.description.into_owned(),
            size: f.size,
            created: f.created,
            last_used: f.last_used,
            usage_count: f.usage_count,
            shared: f.shared,
            in_use: f.in_use,
        });
    }
    check_waves(&records, &deletions)?;
    deletions.sort_by_key(|d| d.wave);
    Ok(SavedCache {
        plan: CachePlan {
            order: deletions.iter().map(|d| d.decision).collect(),
            reclaimable_bytes: deletions.iter().map(|d| d.reclaim_bytes).sum(),
            total_bytes: total_bytes(&records),
            decisions,
            deletions,
        },
        records,
    })
}

/// Each record once, and every planned parent in a later wave than its planned children.
fn check_waves(records: &[CacheRecord], deletions: &[CacheDeletion]) -> Result<(), String> {
    let mut wave_of: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for (r, d) in records.iter().zip(deletions) {
        if wave_of.insert(&r.id, d.wave).is_some() {
            return Err(format!("build cache record {} is listed twice", r.id));
        }
    }
    for (r, d) in records.iter().zip(deletions) {
        for p in &r.parents {
            if let Some(&w) = wave_of.get(p.as_str()).filter(|&&w| w <= d.wave) {
                return Err(format!(
                    "build cache record {p} (wave {w}) would be deleted before its child {} (wave {})",
                    r.id, d.wave
                ));
            }
        }
    }
    Ok(())
}
