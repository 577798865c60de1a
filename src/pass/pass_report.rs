//! What one pass produced ([`PassReport`]): the inventory and plan, the outcomes, the build
//! cache section, the counts, how the deletions waited for builds, and whether the engine
//! went away. Rendering it is the report's; this only assembles it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::build_cache::CacheReport;
use super::host_hint::host_needs;
use super::inputs::PlanSnapshot;
use crate::builds::BuildWait;
use crate::config::Config;
use crate::engine::EngineError;
use crate::execute::{
    DeletionResult, EvictionReport, Summary, count_build_wait, summarize, summarize_build_cache,
};
use crate::inventory::{CacheRecord, Image, ImageId, Inventory};
use crate::plan::{Decision, Plan, Usage};

/// Everything one pass produced.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    /// The engine's ID (`/info`): a saved plan only applies to this engine.
    pub engine_id: String,
    /// The time the plan was made for, on the engine's clock.
    pub planned_at: DateTime<Utc>,
    /// What the engine held; the plan's decisions index its images.
    pub inventory: Inventory,
    pub plan: Plan,
    pub results: Vec<DeletionResult>,
    /// The build cache section (its records are `inventory.build_cache`).
    pub cache: CacheReport,
    /// "Say what the host needs" (see [`host_needs`]), when there is something to say.
    pub host_hint: Option<String>,
    pub summary: Summary,
    /// How the deletions waited for builds; `None` when the pass did not ask.
    pub builds: Option<BuildWait>,
    /// Set when the engine went away during the deletions (it stopped answering, the
    /// connection broke, or its answers were unreadable): the deletions not yet started were
    /// not attempted, and the pass as a whole failed with this error.
    #[serde(skip)]
    pub engine_lost: Option<EngineError>,
    /// The history records and disk measurement the plan was made with.
    #[serde(skip)]
    pub usage: Usage,
    /// The bytes of every image layer, counted once, as the engine's data usage told it
    /// (`None`: not told, or not read).
    #[serde(skip)]
    pub layers_size: Option<u64>,
    /// How the pass evicted under disk pressure, measured wave by wave; `None` when the disk
    /// was not over `high` (or nothing was deleted: a dry run shows the estimate's plan).
    pub eviction: Option<EvictionReport>,
}

impl PassReport {
    /// The image a decision is about.
    #[must_use]
    pub fn image(&self, decision: &Decision) -> &Image {
        &self.inventory.images[decision.image]
    }

    /// The decision for an image, by full ID.
    #[must_use]
    pub fn decision_for(&self, image_id: ImageId) -> Option<&Decision> {
        self.plan
            .decisions
            .iter()
            .find(|d| self.image(d).id == image_id)
    }

    /// The build cache records the cache plan's decisions index (empty without a cache).
    #[must_use]
    pub fn cache_records(&self) -> &[CacheRecord] {
        self.inventory.build_cache.as_deref().unwrap_or_default()
    }
}

/// The counts and the build cache summary of a finished section, filled into `summary`.
pub(super) fn count_build_cache(
    summary: &mut Summary,
    records: &[CacheRecord],
    cache: &CacheReport,
) {
    summary.build_cache = summarize_build_cache(
        records,
        &cache.plan,
        &cache.results,
        cache.notice.as_deref(),
    );
}

/// Assemble the report of a pass from its plan snapshot and what the deletions did.
pub(super) fn assemble(
    planned: PlanSnapshot,
    (results, engine_lost): (Vec<DeletionResult>, Option<EngineError>),
    builds: Option<BuildWait>,
    config: &Config,
    dry_run: bool,
    took: Duration,
) -> PassReport {
    let PlanSnapshot {
        engine_id,
        planned_at,
        inventory,
        plan,
        usage,
        cache,
        gauge: _,
        layers_size,
        image_store: _,
    } = planned;
    let mut summary = summarize(&plan, &results, dry_run, took);
    let records = inventory.build_cache.as_deref().unwrap_or_default();
    count_build_cache(&mut summary, records, &cache);
    let host_hint = host_needs(
        summary.images_matched(),
        &summary.build_cache,
        config.build_cache.len(),
    );
    count_build_wait(&mut summary, builds.as_ref(), plan.deletions.len());
    if let (Some(Ok(u)), Some(d)) = (&usage.disk, &config.disk) {
        summary.disk = Some((u.used_ratio(), f64::from(d.space.high) / 100.0));
    }
    PassReport {
        engine_id,
        planned_at,
        inventory,
        plan,
        results,
        cache,
        host_hint,
        summary,
        builds,
        engine_lost,
        usage,
        layers_size,
        eviction: None,
    }
}
