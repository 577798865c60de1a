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

use super::build_cache::held_by_build_cache;
use super::disk::{Gauge, statvfs as statvfs_of};
use super::error::PassError;
use super::evict::Evictor;
use super::history::{HistoryUse, Session};
use super::inputs::{PlanSnapshot, gather};
use super::pass_report::{PassReport, assemble};
use crate::builds::{Check, Coordination, Gate, GateOutcome};
use crate::config::Config;
use crate::engine::watch::Watched;
use crate::engine::{Engine, EngineError};
use crate::execute::{DeletionResult, EvictionReport, execute};
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
        let planned = Box::pin(gather(
            engine,
            config,
            plan_at,
            history,
            opts.require_disk,
            true,
        ))
        .await?;
        // Candidates an eviction may take beyond the estimate count as deletions too.
        let beyond = (planned.plan.eviction.as_ref()).map_or(0, |e| e.entries.len() - e.estimated);
        let deletions = planned.plan.deletions.len() + planned.cache.plan.deletions.len();
        let deleting = !opts.dry_run && deletions + beyond > 0;
        let (lock, builds) = match gate.as_mut().filter(|_| deleting) {
            None => (None, None),
            Some(gate) => match gate.check(&planned.inventory.containers, deletions.max(1))? {
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
        let mut planned = planned;
        let deleted = Box::pin(delete_images(engine, &mut planned, config, opts, stop)).await;
        let done = (deleted.results, deleted.lost);
        // What the build cache keeps of the deleted images' layers: read the data usage again
        // (only when some image was deleted and some record was shared with an image).
        let held = held_after_deletions(engine, &planned, &done.0).await;
        // The build cache after the images (deleting an image can leave records unshared),
        // under the same build lock; not once the engine went away.
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
        let mut report = assemble(planned, done, builds, config, opts.dry_run, took);
        report.summary.settle_bytes(held, deleted.measured);
        if let Some(e) = &deleted.eviction {
            report.summary.disk_pressure_stuck = e.stuck;
            if let Some(used) = e.final_permille {
                let high = f64::from(e.high_percent) / 100.0;
                report.summary.disk = Some((f64::from(used) / 1000.0, high));
            }
        }
        report.eviction = deleted.eviction;
        return Ok(report);
    }
}

/// What the image deletions of a pass did.
struct Deleted {
    results: Vec<DeletionResult>,
    lost: Option<EngineError>,
    /// Set when the disk was over `high` and the pass evicted in measured waves.
    eviction: Option<EvictionReport>,
    /// The filesystem measured (`statvfs`) and the available bytes it gained meanwhile.
    measured: Option<(String, u64)>,
}

/// Delete a plan's images: as planned, or, when the disk is over `high`, evicting its
/// `disk_pressure` candidates in measured waves ([`Evictor`]). When the pass measures a
/// filesystem, it is measured right before and after, for the bytes really freed.
async fn delete_images<E: Engine>(
    engine: &E,
    planned: &mut PlanSnapshot,
    config: &Config,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Deleted {
    let images = &planned.inventory.images;
    let plan = &mut planned.plan;
    let eviction = plan.eviction.take();
    // Over high with nothing to evict still goes through the eviction: it measures, and
    // says whether the pressure is stuck.
    let nothing = plan.deletions.is_empty() && eviction.is_none();
    if opts.dry_run || nothing {
        plan.eviction = eviction;
        let (results, lost) = (Vec::new(), None);
        return Deleted {
            results,
            lost,
            eviction: None,
            measured: None,
        };
    }
    let statvfs = planned.gauge.as_ref().and_then(Gauge::path);
    let before = statvfs.and_then(|p| statvfs_of(p).ok());
    let progress = Progress::deletions(opts.progress, plan.deletions.len());
    let lost = stop.child_token();
    let watched = Watched::new(engine, lost.clone());
    let concurrency = config.docker.concurrency;
    let measured = (planned.gauge.as_ref()).zip(config.disk.as_ref());
    let (results, report) = if let (Some(order), Some((gauge, disk))) = (eviction, measured) {
        let evictor = Evictor {
            engine: &watched,
            images,
            disk,
            gauge,
            concurrency,
            stop: &lost,
            progress: progress.bar(),
        };
        let (results, report) = evictor.run(plan, order).await;
        (results, Some(report))
    } else {
        let bar = progress.bar();
        let results = execute(&watched, plan, images, concurrency, &lost, bar, &[]).await;
        (results, None)
    };
    drop(progress);
    let after = statvfs
        .zip(before)
        .and_then(|(p, b)| Some((b, statvfs_of(p).ok()?)));
    let measured = after.map(|(b, a)| {
        let gained = a.available_bytes.saturating_sub(b.available_bytes);
        (a.source, gained)
    });
    Deleted {
        results,
        lost: watched.lost(),
        eviction: report,
        measured,
    }
}

/// Bytes of the deleted images' layers the build cache still holds (see
/// [`held_by_build_cache`]); 0 without a deletion or a shared record, or when the data
/// usage cannot be read again.
async fn held_after_deletions<E: Engine>(
    engine: &E,
    planned: &PlanSnapshot,
    results: &[DeletionResult],
) -> u64 {
    let before = planned.inventory.build_cache.as_deref().unwrap_or_default();
    let deleted = results
        .iter()
        .any(|r| r.outcome == crate::execute::Outcome::Deleted);
    if !deleted || !before.iter().any(|r| r.shared) {
        return 0;
    }
    match super::data_usage::bounded(engine).await {
        Ok(after) => held_by_build_cache(before, after.build_cache.as_deref().unwrap_or_default()),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the data usage again: bytes held by the build cache unknown");
            0
        }
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
