//! One garbage-collection pass: inventory → plan → (wait for builds) → execute → report.
//!
//! Shared by `prune`, `plan` and the agent. Fails as a whole only when the inventory
//! cannot be read or the build lock cannot be used; per-image failures are outcomes. When a
//! build is in the way ([`crate::builds`]) the deletions are deferred, and the pass reads the
//! inventory and plans again after each wait, because the world changed.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::builds::{BuildLockError, BuildWait, Check, Coordination, Gate, GateOutcome};
use crate::config::Config;
use crate::engine::{Engine, EngineError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::debug;

use crate::execute::{DeletionResult, Outcome, execute};
use crate::inventory::{Image, ImageId, Inventory};
use crate::plan::{self, Action, Decision, Plan};

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

/// Counts over one pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub images: usize,
    /// Deleted by our own calls.
    pub deleted: usize,
    /// Deleted by the daemon in cascade (included in `deleted_total`).
    pub cascaded: usize,
    /// `deleted + cascaded`.
    pub deleted_total: usize,
    /// 404 on delete: gone before we got to it.
    pub already_gone: usize,
    pub reclaimed_bytes: u64,
    pub kept: usize,
    pub untouched: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Planned but not attempted (stop requested).
    pub not_attempted: usize,
    /// Images selected by each policy.
    pub matched_by_policy: BTreeMap<String, usize>,
    pub deleted_by_policy: BTreeMap<String, usize>,
    pub bytes_by_policy: BTreeMap<String, u64>,
    /// Kept images by reason kind (`in_use`, `protected_reference`, …) plus `skipped`.
    pub kept_by_reason: BTreeMap<String, usize>,
    pub duration_secs: f64,
    pub dry_run: bool,
    /// Planned deletions held back by a build and not attempted (the pass gave up waiting).
    pub deferred: usize,
    /// Checks that found a build in the way.
    pub build_deferrals: u32,
    /// How long the deletions waited for builds; `None` when the pass did not ask (dry run,
    /// nothing to delete, no coordination).
    pub build_wait_secs: Option<f64>,
}

/// Everything one pass produced.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    /// What the engine held; the plan's decisions index its images.
    pub inventory: Inventory,
    pub plan: Plan,
    pub results: Vec<DeletionResult>,
    pub summary: Summary,
    /// How the deletions waited for builds; `None` when the pass did not ask.
    pub builds: Option<BuildWait>,
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
}

/// Run one pass. `stop` asks it to start no new deletions (in-flight ones finish) and ends
/// a wait for builds. `now` is the wall clock at the start; plans made after a wait add the
/// time waited.
pub async fn run_pass<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Result<PassReport, PassError> {
    let started = Instant::now();
    let mut gate = opts.builds.as_ref().map(Gate::new);
    loop {
        let elapsed = chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
        let (inventory, plan) = inventory_and_plan(engine, config, now + elapsed).await?;
        let deleting = !opts.dry_run && !plan.deletions.is_empty();
        let (lock, builds) = match gate.as_mut().filter(|_| deleting) {
            None => (None, None),
            Some(gate) => match gate.check(&inventory.containers, plan.deletions.len())? {
                Check::Go(lock) => (lock, Some(gate.finish(GateOutcome::Clear))),
                Check::Defer => match gate.wait(stop).await? {
                    None => continue,
                    Some(outcome) => {
                        let builds = Some(gate.finish(outcome));
                        let took = started.elapsed();
                        return Ok(report(inventory, plan, Vec::new(), builds, opts, took));
                    }
                },
            },
        };
        let results = if deleting {
            delete(engine, config, &inventory, &plan, opts, stop).await
        } else {
            Vec::new()
        };
        drop(lock);
        return Ok(report(
            inventory,
            plan,
            results,
            builds,
            opts,
            started.elapsed(),
        ));
    }
}

async fn inventory_and_plan<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(Inventory, Plan), EngineError> {
    let (images, containers) = tokio::try_join!(engine.list_images(), engine.list_containers())?;
    let inventory = Inventory { images, containers };
    let plan = plan::plan(&inventory, config, now);
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
    Ok((inventory, plan))
}

async fn delete<E: Engine>(
    engine: &E,
    config: &Config,
    inventory: &Inventory,
    plan: &Plan,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Vec<DeletionResult> {
    let bar = progress_bar(opts.progress, plan.deletions.len());
    let results = execute(
        engine,
        plan,
        &inventory.images,
        config.docker.concurrency,
        stop,
        &bar,
    )
    .await;
    bar.finish_and_clear();
    results
}

fn report(
    inventory: Inventory,
    plan: Plan,
    results: Vec<DeletionResult>,
    builds: Option<BuildWait>,
    opts: &PassOptions,
    took: Duration,
) -> PassReport {
    let mut summary = summarize(&plan, &results, opts.dry_run, took);
    if let Some(wait) = &builds {
        summary.build_deferrals = wait.deferrals;
        summary.build_wait_secs = Some(wait.waited_secs);
        if wait.outcome != GateOutcome::Clear {
            summary.deferred = plan.deletions.len();
        }
    }
    PassReport {
        inventory,
        plan,
        results,
        summary,
        builds,
    }
}

fn progress_bar(enabled: bool, len: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} deleting {pos}/{len} images [{bar:30}] {eta}")
            .expect("the template is a constant that parses")
            .progress_chars("=> "),
    );
    bar
}

/// Count a plan and its outcomes.
#[must_use]
pub fn summarize(
    plan: &Plan,
    results: &[DeletionResult],
    dry_run: bool,
    took: Duration,
) -> Summary {
    let mut s = Summary {
        images: plan.decisions.len(),
        dry_run,
        duration_secs: took.as_secs_f64(),
        ..Summary::default()
    };
    for d in &plan.decisions {
        if let Some(p) = &d.policy {
            bump(&mut s.matched_by_policy, p, 1);
        }
        match d.action {
            Action::Keep => {
                s.kept += 1;
                bump(&mut s.kept_by_reason, d.reason.kind(), 1);
            }
            Action::Untouched => s.untouched += 1,
            Action::Delete => {}
        }
    }
    for r in results {
        let policy = plan.decisions[r.decision].policy.as_deref().unwrap_or("");
        match &r.outcome {
            Outcome::Deleted | Outcome::DeletedInCascade { .. } => {
                if matches!(r.outcome, Outcome::Deleted) {
                    s.deleted += 1;
                } else {
                    s.cascaded += 1;
                }
                s.reclaimed_bytes += r.bytes;
                bump(&mut s.deleted_by_policy, policy, 1);
                bump(&mut s.bytes_by_policy, policy, r.bytes);
            }
            Outcome::AlreadyGone => s.already_gone += 1,
            Outcome::Skipped { .. } => {
                s.skipped += 1;
                bump(&mut s.kept_by_reason, "skipped", 1);
            }
            Outcome::Failed { .. } => s.failed += 1,
            Outcome::NotAttempted => s.not_attempted += 1,
        }
    }
    s.deleted_total = s.deleted + s.cascaded;
    s
}

/// Add to a count keyed by name, allocating the key only the first time.
fn bump<V: std::ops::AddAssign + Default>(map: &mut BTreeMap<String, V>, key: &str, by: V) {
    if let Some(v) = map.get_mut(key) {
        *v += by;
    } else {
        let mut v = V::default();
        v += by;
        map.insert(key.to_owned(), v);
    }
}
