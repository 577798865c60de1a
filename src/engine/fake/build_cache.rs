//! The engine's `POST /build/prune` rules for an anchored set of record IDs, on plain values,
//! as BuildKit applies them (checked against Docker 20.10): in-use records and records
//! another record builds on are never deleted (a child deleted in the same call frees its
//! parent); shared, internal and frontend records only with `all`; the `unused-for` filter
//! is checked; with `keep-storage` the least recently used go only
//! while the cache (shared records left out) holds more.

use chrono::{DateTime, Utc};

use crate::engine::{CachePrune, CachePruneReport};
use crate::inventory::CacheRecord;

/// Whether the engine would delete `r` now (before the storage bound).
fn candidate(records: &[CacheRecord], r: &CacheRecord, q: &CachePrune, now: DateTime<Utc>) -> bool {
    let has_child = records.iter().any(|c| c.parents.contains(&r.id));
    let needs_all = r.shared || r.kind.needs_all();
    let used_since = q.unused_for.is_some_and(|d| {
        let limit = now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        r.last_touched().is_none_or(|t| t > limit)
    });
    q.ids.contains(&r.id) && !r.in_use && !has_child && (q.all || !needs_all) && !used_since
}

pub(super) fn prune(
    records: &mut Vec<CacheRecord>,
    request: &CachePrune,
    now: DateTime<Utc>,
) -> CachePruneReport {
    let mut report = CachePruneReport::default();
    loop {
        let mut ready: Vec<usize> = (0..records.len())
            .filter(|&i| candidate(records, &records[i], request, now))
            .collect();
        ready.sort_by_key(|&i| records[i].last_touched());
        let mut total: u64 = records.iter().filter(|c| !c.shared).map(|c| c.size).sum();
        let mut gone = Vec::new();
        for i in ready {
            if request.keep_storage.is_some_and(|keep| total <= keep) {
                break;
            }
            total = total.saturating_sub(records[i].size);
            gone.push(i);
        }
        if gone.is_empty() {
            return report;
        }
        gone.sort_unstable();
        for i in gone.into_iter().rev() {
            let r = records.remove(i);
            report.reclaimed_bytes += r.size;
            report.deleted.push(r.id);
        }
    }
}
