//! The arithmetic of `du`: each image's bytes counted once (`plan::own_bytes`: every layer
//! for the image that added it), summed per group and per state; layers that images without
//! a common parent share are on one `shared` line, the engine's `LayersSize` minus what the
//! groups hold, so that the lines add up to what the engine stores. The build cache records
//! no image shares are one line of their own (BuildKit's records carry no label or
//! reference). Groups beyond `top` are summed into `other`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::rows::{DuReport, DuRow, RowKind, State};
use crate::config::SpaceGroup;
use crate::history::{Record, Source};
use crate::inventory::{CacheRecord, Image};
use crate::plan::build_cache::CachePlan;
use crate::plan::{Action, Plan, Reason};

/// What the report is made of: a plan, the inventory it was made of, and what the engine
/// and the history added.
#[derive(Debug, Clone, Copy)]
pub struct DuInput<'a> {
    pub images: &'a [Image],
    pub plan: &'a Plan,
    pub records: &'a [CacheRecord],
    pub cache: &'a CachePlan,
    /// Each image's history record, indexed like `images` (empty without a history).
    pub history: &'a [Option<Record>],
    /// `LayersSize`, when the engine tells it.
    pub layers_size: Option<u64>,
    pub planned_at: DateTime<Utc>,
    /// Images deleted since the plan (by the agent's pass that made it), indexed like
    /// `images`: left out, and their bytes taken off `layers_size`. Empty: none.
    pub gone_images: &'a [bool],
    /// Build cache records deleted since the plan, indexed like `records`. Empty: none.
    pub gone_records: &'a [bool],
}

/// The state a decision leaves an image in.
#[must_use]
pub fn state_of(action: Action, reason: &Reason) -> State {
    match (action, reason) {
        (Action::Delete, _) => State::Reclaimable,
        (_, Reason::NoDiskPressure { .. } | Reason::DiskNotMeasured { .. }) => State::Pressure,
        (
            _,
            Reason::InUse { .. }
            | Reason::ParentOfInUse { .. }
            | Reason::ProtectedReference { .. }
            | Reason::ProtectedLabel { .. },
        ) => State::Protected,
        _ => State::Kept,
    }
}

fn group_name<'a>(by: &SpaceGroup, image: &'a Image, policy: Option<&'a str>) -> &'a str {
    match by {
        SpaceGroup::Policy => policy.unwrap_or("(no policy)"),
        SpaceGroup::Repository => image
            .references
            .first()
            .map_or("(untagged)", |r| crate::reference::repository(r)),
        SpaceGroup::Label(key) => image.labels.get(key).unwrap_or("(no label)"),
    }
}

/// Whether a record's last use is one the history saw (or, for images present when it
/// began, their `Created`): an image it merely adopted or first found in a listing has no
/// known use, and its "last use" would read as the moment the history began.
fn seen_used(r: &Record) -> bool {
    !matches!(r.last_used_by, Source::Adopted | Source::Listing)
}

/// Group the space by `by`, keeping the `top` largest groups (all when `None`).
#[must_use]
pub fn group(input: &DuInput<'_>, by: &SpaceGroup, top: Option<usize>) -> DuReport {
    let own = crate::plan::own_bytes(input.images);
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut rows: Vec<DuRow> = Vec::new();
    let gone = |mask: &[bool], i: usize| mask.get(i).copied().unwrap_or(false);
    for d in &input.plan.decisions {
        if gone(input.gone_images, d.image) {
            continue;
        }
        let image = &input.images[d.image];
        let name = group_name(by, image, d.policy.as_deref());
        let k = *index.entry(name).or_insert_with(|| {
            rows.push(DuRow::new(name, RowKind::Images));
            rows.len() - 1
        });
        let last_use = (input.history.get(d.image).copied().flatten())
            .filter(seen_used)
            .and_then(|r| DateTime::from_timestamp(r.last_used, 0));
        rows[k].add(state_of(d.action, &d.reason), own[d.image], last_use);
    }
    rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.group.cmp(&b.group)));
    if let Some(n) = top.filter(|&n| rows.len() > n) {
        let mut other = DuRow::new("other", RowKind::Other);
        for row in rows.drain(n..) {
            other.absorb(&row);
        }
        rows.push(other);
    }
    let mut notes = Vec::new();
    let (mut held, mut freed) = (0, 0);
    for (i, bytes) in own.iter().enumerate() {
        if gone(input.gone_images, i) {
            freed += bytes;
        } else {
            held += bytes;
        }
    }
    let layers_size = input.layers_size.map(|l| l.saturating_sub(freed));
    let layers = layers_size.unwrap_or(held);
    if layers_size.is_none() {
        notes.push(
            "the engine does not tell its layers' total (LayersSize): layers that images \
             without a common parent share are counted in no group, and the total is the \
             groups' sum"
                .to_owned(),
        );
    } else if held > layers {
        notes.push(format!(
            "the groups count {} bytes more than the engine's layers total: images without \
             sharing data (SharedSize) count a base they share once each",
            held - layers
        ));
    }
    let mut shared = DuRow::new("shared", RowKind::Shared);
    shared.bytes = layers.saturating_sub(held);
    shared.kept_bytes = shared.bytes;
    rows.push(shared);
    let cache = cache_row(input.records, input.cache, &|r| gone(input.gone_records, r));
    let cache_bytes = cache.bytes;
    if !input.records.is_empty() {
        rows.push(cache);
    }
    let total_bytes = rows.iter().map(|r| r.bytes).sum();
    DuReport {
        by: by.to_string(),
        planned_at: input.planned_at,
        groups: rows,
        total_bytes,
        engine_total_bytes: layers_size.map(|l| l + cache_bytes),
        notes,
    }
}

/// The build cache records no image shares (shared ones hold image layers, counted there).
fn cache_row(records: &[CacheRecord], plan: &CachePlan, gone: &dyn Fn(usize) -> bool) -> DuRow {
    let mut row = DuRow::new("build cache", RowKind::BuildCache);
    for d in &plan.decisions {
        let r = &records[d.record];
        if r.shared || gone(d.record) {
            continue;
        }
        let state = if d.action == Action::Delete {
            State::Reclaimable
        } else if r.in_use {
            State::Protected
        } else {
            State::Kept
        };
        row.add(state, r.size, r.last_touched());
    }
    row
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
