//! Applying a reviewed plan (`stagesweep apply`): the saved plan's deletions executed like a
//! pass's ([`super::run::execute_plan`]): every image is re-checked on the engine first, so
//! whatever changed since the plan (a moved tag, a new tag, a new container or child) is
//! skipped with its reason. The plan's build cache deletions follow, each call repeating the
//! checks that made the plan delete the records. Reading the file is [`crate::plan_file`]'s.
//!
//! Right before the first deletion (after waiting for the host lock and for builds), the plan
//! is checked again: its age against the limit, on the engine's clock, and every planned
//! image against the current configuration's protection and its policy's `min_age` (one
//! listing; [`crate::plan::still_deleted_by`]): an image the configuration would now keep is
//! skipped with the reason, and so are its planned parents.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::build_cache::CacheReport;
use super::error::PassError;
use super::pass_report::{PassReport, count_build_cache};
use super::run::PassOptions;
use super::run::execute_vetoed;
use crate::builds::{BuildWait, Check, Gate, GateOutcome};
use crate::config::Config;
use crate::engine::{Engine, EngineError};
use crate::execute::{CacheExecution, DeletionResult, count_build_wait, summarize};
use crate::inventory::IdIndex;
use crate::plan::{Usage, still_deleted_by};
use crate::plan_file::{PlanFileError, SavedPlan, check};

/// What a saved plan is checked against before its first deletion.
#[derive(Debug, Clone)]
pub struct ApplyLimits {
    /// The oldest plan that may be applied (`--max-plan-age`).
    pub max_age: Duration,
    /// Where the engine is, for messages.
    pub host: String,
}

/// Refuse a saved plan made for another engine, older than `max_age` or from the future,
/// on the engine's clock (`/info`); else how long it may still wait before it is too old.
pub async fn check_plan<E: Engine>(
    engine: &E,
    saved: &SavedPlan,
    host: &str,
    max_age: Duration,
) -> Result<Result<Duration, PlanFileError>, EngineError> {
    let info = engine.info().await?;
    let now = info.system_time.unwrap_or_else(chrono::Utc::now);
    Ok(check(saved, &info.id, host, now, max_age).map(|()| {
        let age = (now - saved.planned_at).to_std().unwrap_or(Duration::ZERO);
        max_age.saturating_sub(age)
    }))
}

/// Apply a saved plan: its deletions, then the report of what they did (as a pass's, with
/// the saved plan's images and build cache records). A plan that grew too old while it
/// waited is refused before anything is deleted.
pub async fn apply<E: Engine>(
    engine: &E,
    saved: SavedPlan,
    config: &Config,
    limits: &ApplyLimits,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Result<PassReport, PassError> {
    let started = Instant::now();
    let executed = execute(engine, &saved, config, limits, opts, stop).await;
    let (results, builds, engine_lost, cache_run) = executed?;
    let mut summary = summarize(&saved.plan, &results, false, started.elapsed());
    let deletions = saved.plan.deletions.len() + saved.cache.plan.deletions.len();
    count_build_wait(&mut summary, builds.as_ref(), deletions);
    let records = saved.cache.records;
    let cache = CacheReport {
        plan: saved.cache.plan,
        results: cache_run.results,
        notice: cache_run.notice,
    };
    count_build_cache(&mut summary, &records, &cache);
    let mut inventory = saved.inventory;
    inventory.build_cache = Some(records);
    Ok(PassReport {
        engine_id: saved.engine_id,
        planned_at: saved.planned_at,
        inventory,
        plan: saved.plan,
        results,
        cache,
        host_hint: None,
        summary,
        builds,
        engine_lost,
        usage: Usage::default(),
        layers_size: None,
        eviction: None,
    })
}

/// What applying a plan did: the results, how it waited for builds, and the engine error
/// that stopped it part-way, if one did.
type Executed = (
    Vec<DeletionResult>,
    Option<BuildWait>,
    Option<EngineError>,
    CacheExecution,
);

/// Carry out a saved plan's deletions: wait for running builds as a pass does (re-listing
/// containers for detection before each check, but not planning again: the executor
/// re-checks every image), then delete while holding the build lock.
async fn execute<E: Engine>(
    engine: &E,
    saved: &SavedPlan,
    config: &Config,
    limits: &ApplyLimits,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Result<Executed, PassError> {
    let deletions = saved.plan.deletions.len() + saved.cache.plan.deletions.len();
    let mut gate = opts.builds.as_ref().map(Gate::new);
    let (lock, builds) = loop {
        let Some(gate) = gate.as_mut().filter(|_| deletions > 0) else {
            break (None, None);
        };
        let containers = engine.list_containers().await?;
        match gate.check(&containers, deletions)? {
            Check::Go(lock) => break (lock, Some(gate.finish(GateOutcome::Clear))),
            Check::Defer => match gate.wait(stop).await? {
                None => {}
                Some(outcome) => {
                    let builds = Some(gate.finish(outcome));
                    return Ok((Vec::new(), builds, None, CacheExecution::default()));
                }
            },
        }
    };
    let vetoed = if opts.dry_run || deletions == 0 {
        Vec::new()
    } else {
        recheck(engine, saved, config, limits).await?
    };
    let images = &saved.inventory.images;
    let concurrency = config.docker.concurrency;
    let (results, engine_lost) = execute_vetoed(
        engine,
        &saved.plan,
        images,
        concurrency,
        opts,
        stop,
        &vetoed,
    )
    .await;
    // The build cache after the images, under the same build lock; not once the engine
    // went away.
    let cache = if engine_lost.is_none() && !saved.cache.plan.deletions.is_empty() {
        let records = &saved.cache.records;
        Box::pin(crate::execute::build_cache::execute(
            engine,
            &saved.cache.plan,
            records,
            stop,
        ))
        .await
    } else {
        CacheExecution::default()
    };
    drop(lock);
    Ok((results, builds, engine_lost, cache))
}

/// Right before the first deletion: the plan's age again (it may have waited for the host
/// lock and for builds), then each planned image against the current configuration, from
/// one listing. Returns the deletions to skip, by deletion index, with their reasons.
async fn recheck<E: Engine>(
    engine: &E,
    saved: &SavedPlan,
    config: &Config,
    limits: &ApplyLimits,
) -> Result<Vec<Option<String>>, PassError> {
    let info = engine.info().await?;
    let now = info.system_time.unwrap_or_else(chrono::Utc::now);
    check(saved, &info.id, &limits.host, now, limits.max_age)?;
    let listed = engine.list_images().await?;
    let index = IdIndex::new(&listed);
    let vetoed = (saved.plan.deletions.iter())
        .map(|d| {
            let decision = &saved.plan.decisions[d.decision];
            let planned = &saved.inventory.images[decision.image];
            // Gone since the plan: the executor finds it gone.
            let mut image = listed.get(index.position(&planned.id)?)?.clone();
            // The listing has no tag time: the plan's stands (the executor re-checks it).
            image.last_tagged = image.last_tagged.or(planned.last_tagged);
            let why = still_deleted_by(&image, decision, config, now)?;
            tracing::info!(image = %planned.id.short(), reason = %why, "the current configuration keeps a planned image: skipped");
            Some(why)
        })
        .collect();
    Ok(vetoed)
}
