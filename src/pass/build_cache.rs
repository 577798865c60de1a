//! The build cache's part of one pass: take in the engine's data usage, then plan the
//! records. The pass deletes what the plan says after the images, under the same build
//! lock; this module decides nothing itself.

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
