//! One garbage-collection pass: inputs → plan → (wait for builds) → execute → report.
//!
//! Shared by `prune`, `plan` and the agent (`apply` shares the execution step). Fails as a
//! whole only when the inventory cannot be read, a lock cannot be used or a required disk
//! cannot be measured; per-image failures are outcomes. Ages are measured on the engine's
//! clock, which stamped the images. When a build is in the way ([`crate::builds`]) the
//! deletions are deferred, and the pass gathers its inputs and plans again after each wait,
//! because the world changed.

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::PassError;
use super::history::{HistoryUse, Session};
use super::inputs::gather;
use super::pass_report::{PassReport, assemble};
use crate::builds::{Check, Coordination, Gate, GateOutcome};
use crate::config::Config;
use crate::engine::watch::Watched;
use crate::engine::{Engine, EngineError};
use crate::execute::{DeletionResult, execute};
use crate::inventory::Image;
use crate::plan::Plan;
use crate::progress::Progress;

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
    /// Fail the pass when a `when: disk_pressure` policy needs the disk and it cannot be
    /// measured (`prune` and `plan`: a configuration error); without, such policies delete
    /// nothing this pass and the agent goes on.
    pub require_disk: bool,
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
    run_pass_with(engine, config, now, opts, stop, HistoryUse::Off).await
}

/// [`run_pass`] with a history: reconciled before planning, deleted images forgotten
/// after, and written at the end when the pass opened it.
pub async fn run_pass_with<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
    opts: &PassOptions,
    stop: &CancellationToken,
    history: HistoryUse<'_>,
) -> Result<PassReport, PassError> {
    let session = Session::open(history, config, opts.dry_run)?;
    let report = Box::pin(pass(engine, config, now, opts, stop, &session)).await;
    if report.is_ok() {
        session.close(config);
    }
    report
}

async fn pass<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
    opts: &PassOptions,
    stop: &CancellationToken,
    history: &Session<'_>,
) -> Result<PassReport, PassError> {
    let started = Instant::now();
    let mut gate = opts.builds.as_ref().map(Gate::new);
    let mut plan_at = now;
    loop {
        // Boxed: the listing, data usage and tag-time lookups make a large future.
        let planned = Box::pin(gather(engine, config, plan_at, history, opts.require_disk)).await?;
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
                        return Ok(assemble(planned, done, builds, config, opts.dry_run, took));
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
            let plan = &planned.cache.plan;
            let run = Box::pin(crate::execute::build_cache::execute(
                engine, plan, records, stop,
            ));
            let run = run.await;
            planned.cache.results = run.results;
            planned.cache.notice = planned.cache.notice.take().or(run.notice);
        }
        drop(lock);
        history.forget(&planned.inventory, &planned.plan, &done.0);
        let took = started.elapsed();
        return Ok(assemble(planned, done, builds, config, opts.dry_run, took));
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
    execute_vetoed(engine, plan, images, concurrency, opts, stop, &[]).await
}

/// [`execute_plan`] with deletions to skip, by deletion index, each with its reason.
pub(super) async fn execute_vetoed<E: Engine>(
    engine: &E,
    plan: &Plan,
    images: &[Image],
    concurrency: usize,
    opts: &PassOptions,
    stop: &CancellationToken,
    vetoed: &[Option<String>],
) -> (Vec<DeletionResult>, Option<EngineError>) {
    if opts.dry_run || plan.deletions.is_empty() {
        return (Vec::new(), None);
    }
    let progress = Progress::deletions(opts.progress, plan.deletions.len());
    let lost = stop.child_token();
    let watched = Watched::new(engine, lost.clone());
    let results = execute(
        &watched,
        plan,
        images,
        concurrency,
        &lost,
        progress.bar(),
        vetoed,
    )
    .await;
    drop(progress);
    (results, watched.lost())
}
