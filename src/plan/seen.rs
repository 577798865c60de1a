//! What the planner knows besides the inventory ([`Usage`]: the history's records and the
//! disk measurement), and the per-image times derived from it: the effective creation time
//! for `min_age`/`max_age`, `last_used` with parents counting their children's uses, and
//! the LRU key.

use chrono::{DateTime, Utc};

use super::age::age_base;
use super::graph::Graph;
use crate::history::{Record, Records, Source, unix};
use crate::inventory::DiskUsage;
use crate::inventory::Image;

/// Plain values gathered before planning, beside the inventory.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Each image's history record, indexed like the inventory's images (empty when the
    /// history is off): one small vector for the pass instead of a copy of the store's map.
    pub history: Vec<Option<Record>>,
    /// The disk measurement, or why it failed; `None` when no policy needs it.
    pub disk: Option<Result<DiskUsage, String>>,
}

impl Usage {
    /// The records of `images`, in their order (empty when `records` is).
    #[must_use]
    pub fn records_of(images: &[Image], records: &Records) -> Vec<Option<Record>> {
        if records.is_empty() {
            return Vec::new();
        }
        images.iter().map(|i| records.get(&i.id).copied()).collect()
    }

    /// The record of the inventory's image `i`, when the history has one.
    #[must_use]
    pub fn record(&self, i: usize) -> Option<&Record> {
        self.history.get(i).and_then(Option::as_ref)
    }
}

/// Where an image's effective time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Created,
    FirstSeen(Source),
}

/// Per-image history, indexed like the inventory.
pub(super) struct Seen<'u> {
    records: &'u [Option<Record>],
    /// `last_used` (else `first_seen`), raised to the latest of the image's descendants.
    last_used: Vec<Option<(i64, Source)>>,
}

impl<'u> Seen<'u> {
    /// Empty (and allocation-free) when the history is.
    pub fn new(graph: &Graph<'_>, usage: &'u Usage) -> Self {
        let records = usage.history.as_slice();
        if records.is_empty() {
            return Self {
                records,
                last_used: Vec::new(),
            };
        }
        debug_assert_eq!(
            records.len(),
            graph.len(),
            "records are indexed like the inventory"
        );
        let mut last_used: Vec<Option<(i64, Source)>> = (0..graph.len())
            .map(|i| records.get(i).copied().flatten())
            .map(|r| r.map(|r| (r.last_used.max(r.first_seen), r.last_used_by)))
            .collect();
        // Each use climbs the parent chain while it is the latest there.
        for i in 0..graph.len() {
            let Some(used) = last_used[i] else { continue };
            let mut next = graph.parent[i];
            while let Some(p) = next {
                if last_used[p].is_some_and(|(t, _)| t >= used.0) {
                    break;
                }
                last_used[p] = Some(used);
                next = graph.parent[p];
            }
        }
        Self { records, last_used }
    }

    pub fn record(&self, i: usize) -> Option<&Record> {
        self.records.get(i).and_then(Option::as_ref)
    }

    /// The latest use of the image or of any of its descendants, and its source.
    pub fn last_used(&self, i: usize) -> Option<(DateTime<Utc>, Source)> {
        self.last_used
            .get(i)
            .copied()
            .flatten()
            .map(|(t, by)| (unix(t), by))
    }

    /// The LRU key (larger = more recently used): last use, first seen, then `Created`.
    pub fn lru_key(&self, i: usize, created_key: u128) -> (i64, i64, u128) {
        let created = created_key_secs(created_key);
        let first = self.record(i).map_or(created, |r| r.first_seen);
        let used = self
            .last_used
            .get(i)
            .copied()
            .flatten()
            .map_or(first, |u| u.0);
        (used, first, created_key)
    }

    /// The time `min_age` and `max_age` count from: the later of `Created` and
    /// `LastTagTime` (each when it is a real time, [`age_base`]) and `first_seen`. `None`:
    /// unknown (no real time and no history).
    pub fn effective(
        &self,
        i: usize,
        image: &Image,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, Origin)> {
        let base = age_base(image, now);
        let Some(r) = self.record(i) else {
            return base.map(|t| (t, Origin::Created));
        };
        let first = r.first_seen_time();
        match base {
            Some(t) if t >= first => Some((t, Origin::Created)),
            _ => Some((first, Origin::FirstSeen(r.first_seen_by))),
        }
    }
}

/// Unix seconds of a [`super::graph::time_key`].
fn created_key_secs(key: u128) -> i64 {
    let biased = u64::try_from(key >> 31).unwrap_or(u64::MAX);
    (biased ^ (1 << 63)).cast_signed()
}

#[cfg(test)]
#[path = "seen_tests.rs"]
mod tests;
