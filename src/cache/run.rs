//! The build cache's part of one pass: take in the engine's disk usage, then plan the
//! records. `pass` deletes what the plan says after the images, under the same build lock;
//! this module decides nothing itself.

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use super::{CachePlan, CacheRecord, plan};
use crate::config::CacheRule;
use crate::engine::{DiskUsage, EngineError};
use crate::inventory::Inventory;

/// Put the disk usage into the inventory (each image's `SharedSize`, the build cache
/// records). Returns the notice for the pass when the build cache section must be skipped:
/// the disk usage could not be read, or (with rules to apply) the engine has no build cache.
pub fn take_disk_usage(
    inventory: &mut Inventory,
    usage: Result<DiskUsage, EngineError>,
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

/// Plan `records` under `rules` at `now`, logging every decision at debug level.
#[must_use]
pub fn plan_logged(records: &[CacheRecord], rules: &[CacheRule], now: DateTime<Utc>) -> CachePlan {
    let plan = plan(records, rules, now);
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
