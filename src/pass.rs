//! One garbage-collection pass: inventory → plan → (wait for builds) → execute → report.
//!
//! Shared by `prune`, `plan` and the agent (`apply` shares the execution step). Fails as a
//! whole only when the inventory cannot be read or the build lock cannot be used; per-image
//! failures are outcomes. Ages are measured on the engine's clock, which stamped the images.
//! When a build is in the way ([`crate::builds`]) the deletions are deferred, and the pass
//! reads the inventory and plans again after each wait, because the world changed.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::builds::{BuildLockError, BuildWait, Check, Coordination, Gate, GateOutcome};
use crate::cache::{self, CacheReport};
use crate::config::Config;
use crate::engine::watch::Watched;
use crate::engine::{Engine, EngineError, EngineInfo};
use crate::execute::{DeletionResult, execute};
use crate::history::History;
use crate::inventory::{Image, ImageId, Inventory};
use crate::observe;
use crate::plan::{Decision, Plan, Usage};
use crate::progress::Progress;
use crate::tag_times;

pub use crate::summary::{Summary, count_build_wait, summarize};

/// Clock differences up to this are normal; beyond it, a pass says so.
const SKEW_WORTH_A_WARNING: chrono::Duration = chrono::Duration::seconds(60);

/// How a pass runs.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// Show a progress bar on stderr while deleting.
    pub progress: bool,
    /// Let running builds hold the deletions back (build lock and detection). `None`:
    /// delete without asking, for tests against a fake engine; `prune` and the agent set it.
    pub builds: Option<Coordination>,
}

/// Why a pass failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    BuildLock(#[from] BuildLockError),
}

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
    /// "Say what the host needs" (see [`cache::hint::host_needs`]), when there is something to say.
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
    pub fn cache_records(&self) -> &[cache::CacheRecord] {
        self.inventory.build_cache.as_deref().unwrap_or_default()
    }
}

/// Run one pass without history. `stop` asks it to start no new deletions (in-flight ones
/// finish) and ends a wait for builds; so does the engine going away mid-pass (see
/// [`PassReport::engine_lost`]). `now` is the wall clock at the start; plans made after a
/// wait add the time waited (the engine's clock wins when it tells it).
pub async fn run_pass<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Result<PassReport, PassError> {
    run_pass_with(engine, config, now, opts, stop, None).await
}

/// [`run_pass`] that reads and updates `history` (reconciled before planning; deleted
/// images forgotten after).
pub async fn run_pass_with<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
    opts: &PassOptions,
    stop: &CancellationToken,
    history: Option<&Mutex<History>>,
) -> Result<PassReport, PassError> {
    let started = Instant::now();
    let mut gate = opts.builds.as_ref().map(Gate::new);
    let mut plan_at = now;
    loop {
        // Boxed: the listing, disk usage and tag-time lookups make a large future.
        let planned = Box::pin(inventory_and_plan(engine, config, plan_at, history)).await?;
        let deletions = planned.plan.deletions.len() + planned.cache.plan.deletions.len();
        let deleting = !opts.dry_run && deletions > 0;
        let (lock, builds) = match gate.as_mut().filter(|_| deleting) {
            None => (None, None),
            Some(gate) => match gate.check(&planned.inventory.containers, deletions)? {
                Check::Go(lock) => (lock, Some(gate.finish(GateOutcome::Clear))),
                Check::Defer => match gate.wait(stop).await? {
                    None => {
                        // Plan again, as of now: the world changed while we waited.
                        let waited = chrono::Duration::from_std(started.elapsed());
                        plan_at = now + waited.unwrap_or_default();
                        continue;
                    }
                    Some(outcome) => {
                        let builds = Some(gate.finish(outcome));
                        let took = started.elapsed();
                        let done = (Vec::new(), None);
                        return Ok(report(planned, done, builds, config, opts, took));
                    }
                },
            },
        };
        let images = &planned.inventory.images;
        let concurrency = config.docker.concurrency;
        let done = execute_plan(engine, &planned.plan, images, concurrency, opts, stop).await;
        // The build cache after the images (deleting an image can leave records unshared),
        // under the same build lock; not once the engine went away.
        let mut planned = planned;
        if !opts.dry_run && done.1.is_none() && !planned.cache.plan.deletions.is_empty() {
            let records = planned.inventory.build_cache.as_deref().unwrap_or_default();
            let run = Box::pin(cache::execute(engine, &planned.cache.plan, records, stop)).await;
            planned.cache.results = run.results;
            planned.cache.notice = planned.cache.notice.take().or(run.notice);
        }
        drop(lock);
        if let Some(h) = history {
            observe::forget_deleted(h, &planned.inventory, &planned.plan, &done.0);
        }
        return Ok(report(
            planned,
            done,
            builds,
            config,
            opts,
            started.elapsed(),
        ));
    }
}

/// One inventory and its plan, with the engine's identity, the time planned for, and the
/// history and disk measurement it was made with.
struct PlanSnapshot {
    engine_id: String,
    planned_at: DateTime<Utc>,
    inventory: Inventory,
    plan: Plan,
    usage: Usage,
    /// The build cache plan (no results yet), with the notice when it was skipped.
    cache: CacheReport,
}

async fn inventory_and_plan<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
    history: Option<&Mutex<History>>,
) -> Result<PlanSnapshot, EngineError> {
    let listing = async {
        tokio::try_join!(
            engine.info(),
            engine.list_images(),
            engine.list_containers()
        )
    };
    // Boxed: the disk usage step would make every pass future large.
    let (listing, disk_usage) = tokio::join!(listing, Box::pin(engine.disk_usage()));
    let (info, images, containers) = listing?;
    let now = engine_now(&info, now);
    let mut inventory = Inventory {
        images,
        containers,
        build_cache: None,
    };
    let have_rules = !config.build_cache.is_empty();
    let notice = cache::take_disk_usage(&mut inventory, disk_usage, have_rules);
    inventory
        .check_parents()
        .map_err(|e| EngineError::Other(format!("{} {e}", engine.describe())))?;
    let usage = observe::gather(config, &info, &inventory, history, now);
    if let Some(Err(e)) = &usage.disk {
        tracing::error!(error = %e, "disk_pressure policies delete nothing this pass");
    }
    let plan = tag_times::plan_with_tag_times(engine, &mut inventory, config, &usage, now).await?;
    debug!(
        images = plan.decisions.len(),
        deletions = plan.deletions.len(),
        reclaimable_bytes = plan.reclaimable_bytes,
        "planned"
    );
    for d in plan.in_order() {
        let image = inventory.images[d.image].id.short();
        debug!(image, action = %d.action, reason = %d.reason, "decision");
    }
    let records = inventory.build_cache.as_deref().unwrap_or_default();
    let cache = CacheReport {
        plan: cache::plan_logged(records, &config.build_cache, now),
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
    })
}

fn report(
    planned: PlanSnapshot,
    (results, engine_lost): (Vec<DeletionResult>, Option<EngineError>),
    builds: Option<BuildWait>,
    config: &Config,
    opts: &PassOptions,
    took: Duration,
) -> PassReport {
    let PlanSnapshot {
        engine_id,
        planned_at,
        inventory,
        plan,
        usage,
        cache,
    } = planned;
    let mut summary = summarize(&plan, &results, opts.dry_run, took);
    let records = inventory.build_cache.as_deref().unwrap_or_default();
    summary.build_cache = cache::summarize(
        records,
        &cache.plan,
        &cache.results,
        cache.notice.as_deref(),
    );
    let host_hint = cache::hint::host_needs(
        summary.images_matched(),
        summary.build_cache.total_bytes,
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
    }
}

/// Carry out a plan's deletions (none in a dry run), with a progress bar when asked. The
/// engine is watched: when it goes away (no answer in time, a broken connection, unreadable
/// answers) no new deletion starts, and the error that stopped them comes back beside the
/// results (see [`PassReport::engine_lost`]).
pub async fn execute_plan<E: Engine>(
    engine: &E,
    plan: &Plan,
    images: &[Image],
    concurrency: usize,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> (Vec<DeletionResult>, Option<EngineError>) {
    if opts.dry_run || plan.deletions.is_empty() {
        return (Vec::new(), None);
    }
    let progress = Progress::deletions(opts.progress, plan.deletions.len());
    let lost = stop.child_token();
    let watched = Watched::new(engine, lost.clone());
    let results = execute(&watched, plan, images, concurrency, &lost, progress.bar()).await;
    drop(progress);
    (results, watched.lost())
}

/// The time to plan at: the engine's clock when it tells it (it stamped `Created`), else ours.
fn engine_now(info: &EngineInfo, ours: DateTime<Utc>) -> DateTime<Utc> {
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
