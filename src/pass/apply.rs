//! Applying a reviewed plan (`stagesweep apply`): the saved plan's deletions executed like a
//! pass's ([`super::run::execute_plan`]): every image is re-checked on the engine first, so
//! whatever changed since the plan (a moved tag, a new tag, a new container or child) is
//! skipped with its reason. The plan's build cache deletions follow, each call repeating the
//! checks that made the plan delete the records. Reading and checking the file is
//! [`crate::plan_file`]'s.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::build_cache::CacheReport;
use super::error::PassError;
use super::pass_report::{PassReport, count_build_cache};
use super::run::{PassOptions, execute_plan};
use crate::builds::{BuildWait, Check, Gate, GateOutcome};
use crate::config::Config;
use crate::engine::{Engine, EngineError};
use crate::execute::{CacheExecution, DeletionResult, count_build_wait, summarize};
use crate::plan::Usage;
use crate::plan_file::{PlanFileError, SavedPlan, check};

/// Refuse a saved plan made for another engine, older than `max_age` or from the future,
/// on the engine's clock (`/info`).
pub async fn check_plan<E: Engine>(
    engine: &E,
    saved: &SavedPlan,
    host: &str,
    max_age: Duration,
) -> Result<Result<(), PlanFileError>, EngineError> {
    let info = engine.info().await?;
    let now = info.system_time.unwrap_or_else(chrono::Utc::now);
    Ok(check(saved, &info.id, host, now, max_age))
}

/// Apply a saved plan: its deletions, then the report of what they did (as a pass's, with
/// the saved plan's images and build cache records).
pub async fn apply<E: Engine>(
    engine: &E,
    saved: SavedPlan,
    config: &Config,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Result<PassReport, PassError> {
    let started = Instant::now();
    let concurrency = config.docker.concurrency;
    let executed = execute(engine, &saved, concurrency, opts, stop).await;
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
    concurrency: usize,
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
    let images = &saved.inventory.images;
    let (results, engine_lost) =
        execute_plan(engine, &saved.plan, images, concurrency, opts, stop).await;
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
