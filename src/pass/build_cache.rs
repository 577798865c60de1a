//! The build cache's part of one pass: take in the engine's data usage, then plan the
//! records. The pass deletes what the plan says after the images, under the same build
//! lock; this module decides nothing itself. Also how much of the deleted images' layers
//! the build cache keeps ([`held_by_build_cache`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{debug, warn};

use crate::config::CacheRule;
use crate::engine::{DataUsage, EngineError};
use crate::execute::CacheResult;
use crate::inventory::{CacheRecord, Inventory};
use crate::plan::build_cache::{CachePlan, plan};

/// The build cache section of one pass: the plan, its outcomes, and why it was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheReport {
    pub plan: CachePlan,
    pub results: Vec<CacheResult>,
    /// Set when the engine has no build cache or it could not be read.
    pub notice: Option<String>,
}

/// Put the data usage into the inventory (each image's `SharedSize`, the build cache
/// records). Returns the notice for the pass when the build cache section must be skipped:
/// the data usage could not be read, or (with rules to apply) the engine has no build cache.
pub fn take_data_usage(
    inventory: &mut Inventory,
    usage: Result<DataUsage, EngineError>,
    have_rules: bool,
) -> Option<String> {
    let notice = match usage {
        Ok(usage) => {
            inventory.apply_shared_sizes(&usage.shared_sizes);
            inventory.build_cache = usage.build_cache;
            (inventory.build_cache.is_none() && have_rules).then(|| {
                "this engine reports no build cache (BuildKit is off or not supported): \
                 build_cache rules are skipped"
                    .to_owned()
            })
        }
        Err(e) => Some(format!(
            "the engine's disk usage could not be read ({e}): build_cache rules are skipped \
             and image sizes are estimates without layer-sharing data"
        )),
    };
    if let Some(n) = &notice {
        warn!("{n}");
    }
    notice
}

/// Bytes of the deleted images' layers that the build cache still holds: records that were
/// shared with an image before the deletions (`before`) and are private after (`after`,
/// the data usage read again). BuildKit keeps the layers of an image it built; deleting
/// the image frees them only when the cache goes. The API does not say which image a
/// record holds, only that some image shared it. On the containerd image store a record's
/// size also counts the image's compressed content, which goes with the image: the figure
/// is high there.
#[must_use]
pub fn held_by_build_cache(before: &[CacheRecord], after: &[CacheRecord]) -> u64 {
    let shared_before: rustc_hash::FxHashSet<&str> = (before.iter())
        .filter(|r| r.shared)
        .map(|r| r.id.as_str())
        .collect();
    after
        .iter()
        .filter(|r| !r.shared && shared_before.contains(r.id.as_str()))
        .map(|r| r.size)
        .sum()
}

/// Plan `records` under `rules` at `now` with `images` images listed, logging every
/// decision at debug level.
#[must_use]
pub fn plan_logged(
    records: &[CacheRecord],
    rules: &[CacheRule],
    images: usize,
    now: DateTime<Utc>,
) -> CachePlan {
    let plan = plan(records, rules, images, now);
    debug!(
        records = records.len(),
        deletions = plan.deletions.len(),
        reclaimable_bytes = plan.reclaimable_bytes,
        "planned the build cache"
    );
    for d in plan.in_order() {
        let record = records[d.record].short_id();
        debug!(record, action = %d.action, reason = %d.reason, "cache decision");
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, size: u64, shared: bool) -> CacheRecord {
        CacheRecord {
            shared,
            ..crate::engine::fake::cache_record(id, size)
        }
    }

    #[test]
    fn records_that_turned_private_hold_the_deleted_images_layers() {
        let before = [
            record("copy", 20, true),
            record("run", 10, true),
            record("stage", 30, true), // a builder stage: stays shared (containerd store)
            record("ctx", 1, false),
        ];
        let after = [
            record("copy", 20, false),
            record("run", 10, false),
            record("stage", 30, true),
            record("ctx", 1, false),
            record("new", 5, false), // appeared since: not ours
        ];
        assert_eq!(held_by_build_cache(&before, &after), 30);
        assert_eq!(held_by_build_cache(&before, &before), 0, "nothing changed");
        assert_eq!(held_by_build_cache(&[], &after), 0);
    }
}
