//! Filling in `LastTagTime` for the images whose age decides their fate.
//!
//! `Created` is not when an image arrived: a rebuild that hits the cache tags an old image
//! again, `docker load` keeps the original date, reproducible builds stamp 1970. The engine
//! knows when it last tagged an image, but only image inspect says so, one call per image.
//! So a pass plans, inspects the images the plan would delete (an eviction's candidates
//! beyond the estimate included, and those it keeps for an unknown age) whose tag time could
//! matter — tagged ones, and any whose `Created` is
//! unusable — and plans again with what it learned, until no new such image comes up.
//! Untagged images with a usable `Created` are not inspected: their tag time is at most when
//! their tag moved away, and it would only make them older.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::config::Config;
use crate::engine::{Engine, EngineError};
use crate::inventory::Inventory;
use crate::plan::{self, Action, Plan, Reason, Usage};

/// Plan, learning the tag times of the images whose fate they could change, until the plan
/// asks for no tag time it does not have. Each round inspects only images not inspected yet.
pub async fn plan_with_tag_times<E: Engine>(
    engine: &E,
    inventory: &mut Inventory,
    config: &Config,
    usage: &Usage,
    now: DateTime<Utc>,
) -> Result<Plan, EngineError> {
    let mut inspected: HashSet<usize> = HashSet::new();
    loop {
        let plan = plan::plan_with(inventory, config, usage, now);
        // Every eviction candidate may be deleted, beyond the estimate too: the executor
        // re-checks its tag time against the one planned with.
        let mut candidate = vec![false; plan.decisions.len()];
        for e in plan.eviction.iter().flat_map(|o| &o.entries) {
            candidate[e.decision] = true;
        }
        let wanted: Vec<usize> = plan
            .decisions
            .iter()
            .enumerate()
            .filter(|(k, d)| {
                let unknown = matches!(d.reason, Reason::UnknownAge { .. });
                let tagged = !inventory.images[d.image].references.is_empty();
                let deleted = d.action == Action::Delete || candidate[*k];
                (unknown || (deleted && tagged)) && !inspected.contains(&d.image)
            })
            .map(|(_, d)| d.image)
            .collect();
        if wanted.is_empty() {
            return Ok(plan);
        }
        let learned = fill(engine, inventory, &wanted, config.docker.concurrency).await?;
        inspected.extend(wanted);
        if learned == 0 {
            return Ok(plan);
        }
    }
}

/// Inspect `wanted` images and record their tag times; returns how many had one.
async fn fill<E: Engine>(
    engine: &E,
    inventory: &mut Inventory,
    wanted: &[usize],
    concurrency: usize,
) -> Result<usize, EngineError> {
    let images = &inventory.images;
    let found: Vec<(usize, Option<DateTime<Utc>>)> = stream::iter(wanted.iter().copied())
        .map(|i| async move {
            match engine.inspect_image(&images[i].id.to_string()).await {
                Ok(state) => Ok((i, state.last_tagged)),
                // Gone since the listing: the executor will find it gone too.
                Err(EngineError::NotFound(_)) => Ok((i, None)),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut learned = 0;
    for (i, tagged) in found {
        if tagged.is_some() {
            inventory.images[i].last_tagged = tagged;
            learned += 1;
        }
    }
    Ok(learned)
}
