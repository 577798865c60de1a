//! The engine's `POST /build/prune` rules for one anchored record ID, on plain values, as
//! BuildKit applies them (checked against Docker 20.10): in-use records and records another
//! record builds on are never deleted; shared, internal and frontend records only with
//! `all`; the `type` and `unused-for` filters and the `keep-storage` bound are checked.

use chrono::{DateTime, Utc};

use crate::cache::CacheRecord;
use crate::engine::{CachePrune, CachePruneReport};

pub(super) fn prune(
    records: &mut Vec<CacheRecord>,
    request: &CachePrune,
    now: DateTime<Utc>,
) -> CachePruneReport {
    let nothing = CachePruneReport::default();
    let Some(i) = records.iter().position(|r| r.id == request.id) else {
        return nothing;
    };
    let r = &records[i];
    let has_child = records.iter().any(|c| c.parents.contains(&r.id));
    let needs_all = r.shared || r.kind.needs_all();
    let used_since = request.unused_for.is_some_and(|d| {
        let limit = now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        r.last_touched().is_none_or(|t| t > limit)
    });
    // Like BuildKit: the cache total leaves out shared records.
    let total: u64 = records.iter().filter(|c| !c.shared).map(|c| c.size).sum();
    let fits = request.keep_storage.is_some_and(|keep| total <= keep);
    if r.kind != request.kind
        || r.in_use
        || has_child
        || (needs_all && !request.all)
        || used_since
        || fits
    {
        return nothing;
    }
    let r = records.remove(i);
    CachePruneReport {
        deleted: vec![r.id],
        reclaimed_bytes: r.size,
    }
}
