//! Everything a pass plans from, gathered once per plan: one `/info` (the engine's identity,
//! clock and data root), the listings of images and containers, the data usage (layer
//! sharing, build cache records; bounded by `data_usage`), the history reconciled with the
//! listing, one disk measurement when a policy needs it, and the tag times of the images
//! whose fate they could change. The planner gets them as plain values and plans; nothing here decides.

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use super::build_cache::{CacheReport, plan_logged, take_data_usage};
use super::data_usage;
use super::disk::{Gauge, measure_disk, needs_disk};
use super::error::PassError;
use super::history::Session;
use super::tag_times::plan_with_tag_times;
use crate::config::Config;
use crate::engine::{Engine, EngineError, EngineInfo};
use crate::inventory::Inventory;
use crate::plan::{Plan, Usage};

/// Clock differences up to this are normal; beyond it, a pass says so.
const SKEW_WORTH_A_WARNING: chrono::Duration = chrono::Duration::seconds(60);

/// One inventory and its plan, with the engine's identity, the time planned for, and the
/// history and disk measurement it was made with.
pub(super) struct PlanSnapshot {
    pub engine_id: String,
    pub planned_at: DateTime<Utc>,
    pub inventory: Inventory,
    pub plan: Plan,
    pub usage: Usage,
    /// The build cache plan (no results yet), with the notice when it was skipped.
    pub cache: CacheReport,
    /// What the disk measurement read, to measure again around the deletions; `None` when
    /// no policy needs the disk or it could not be located.
    pub gauge: Option<Gauge>,
    /// The bytes of every image layer, counted once, as the engine's data usage tells it.
    pub layers_size: Option<u64>,
    /// Where the engine keeps its images (`/info`).
    pub image_store: crate::engine::ImageStore,
}

/// Gather the inputs and plan at `now` (the engine's clock wins when it tells it). With
/// `require_disk`, a disk that a policy needs and that cannot be measured fails the pass;
/// without, such policies delete nothing this pass. Without `tag_times` the plan is made
/// without inspecting any image (`du`: an estimate, see [`plan_with_tag_times`]).
pub(super) async fn gather<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
    history: &Session<'_>,
    require_disk: bool,
    tag_times: bool,
) -> Result<PlanSnapshot, PassError> {
    let listing = async {
        tokio::try_join!(
            engine.info(),
            engine.list_images(),
            engine.list_containers()
        )
    };
    let ((info, images, containers), data_usage) = data_usage::beside(engine, listing).await?;
    let now = engine_now(&info, now);
    let mut inventory = Inventory {
        images,
        containers,
        build_cache: None,
    };
    let have_rules = !config.build_cache.is_empty();
    let layers_size = data_usage.as_ref().ok().and_then(|u| u.layers_size);
    let notice = take_data_usage(&mut inventory, data_usage, have_rules);
    inventory
        .check_parents()
        .map_err(|e| EngineError::Other(format!("{} {e}", engine.describe())))?;
    let mut usage = Usage {
        history: history.reconcile(config, &info, &inventory, now),
        disk: None,
    };
    let mut gauge = None;
    if needs_disk(config) {
        match measure_disk(config, &info, &inventory) {
            Ok((located, measured)) => {
                debug!(disk = %located.describe(&info), used_ratio = measured.used_ratio(), "measured the disk");
                gauge = Some(located);
                usage.disk = Some(Ok(measured));
            }
            Err(e) if require_disk => return Err(e.into()),
            Err(e) => {
                tracing::error!(key = e.key(), error = %e, "disk_pressure policies delete nothing this pass");
                usage.disk = Some(Err(e.to_string()));
            }
        }
    }
    let plan = if tag_times {
        plan_with_tag_times(engine, &mut inventory, config, &usage, now).await?
    } else {
        crate::plan::plan_with(&inventory, config, &usage, now)
    };
    debug!(
        images = plan.decisions.len(),
        deletions = plan.deletions.len(),
        reclaimable_bytes = plan.reclaimable_bytes,
        "planned"
    );
    for d in plan.in_order() {
        // The short ID is only spelled out when debug events are kept (100k of them at 100k
        // images otherwise).
        let image = inventory.images[d.image].id;
        debug!(image = %image.short(), action = %d.action, reason = %d.reason, "decision");
    }
    let records = inventory.build_cache.as_deref().unwrap_or_default();
    // Count only images without a parent as what can hold a shared record: BuildKit records
    // no parent, and the classic builder's step images (each with a parent) hold layers of
    // its own, not BuildKit's. A classic image used as a BuildKit `FROM` is the exception;
    // a wrong guess costs a cache hit, never an image (docs/how-it-decides.md).
    let holders = (inventory.images.iter())
        .filter(|i| i.parent_id.is_none())
        .count();
    let cache = CacheReport {
        plan: plan_logged(records, &config.build_cache, holders, now),
        results: Vec::new(),
        notice,
    };
    Ok(PlanSnapshot {
        engine_id: info.id,
        planned_at: now,
        inventory,
        plan,
        usage,
        cache,
        gauge,
        layers_size,
        image_store: info.image_store,
    })
}

/// The time to plan at: the engine's clock when it tells it (it stamped `Created`), else ours.
pub(super) fn engine_now(info: &EngineInfo, ours: DateTime<Utc>) -> DateTime<Utc> {
    let Some(theirs) = info.system_time else {
        return ours;
    };
    let skew = theirs - ours;
    if skew.abs() > SKEW_WORTH_A_WARNING {
        warn!(
            engine = %info.name,
            skew_secs = skew.num_seconds(),
            "the engine's clock differs from ours; ages are measured on the engine's clock"
        );
    }
    theirs
}
