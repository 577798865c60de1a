//! One garbage-collection pass: inventory → plan → execute → report.
//!
//! Shared by `prune`, `plan` and the agent (`apply` shares the execution step). Fails as a
//! whole only when the inventory cannot be read; per-image failures are outcomes. Ages are
//! measured on the engine's clock, which stamped the images.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{Engine, EngineError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::{debug, warn};

use crate::cache::{self, CacheReport, CacheSummary};
use crate::engine::EngineInfo;
use crate::execute::{DeletionResult, Outcome, execute};
use crate::inventory::{Image, ImageId, Inventory};
use crate::plan::{Action, Decision, Plan};
use crate::tag_times;

/// Clock differences up to this are normal; beyond it, a pass says so.
const SKEW_WORTH_A_WARNING: chrono::Duration = chrono::Duration::seconds(60);

/// How a pass runs.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// Show a progress bar on stderr while deleting.
    pub progress: bool,
}

/// Counts over one pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub images: usize,
    /// Deleted (each by its own call).
    pub deleted: usize,
    /// The daemon untagged but kept the image (it gained a child or a reference).
    pub untagged_only: usize,
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
    /// The build cache section, counted separately from images.
    pub build_cache: CacheSummary,
}

impl Summary {
    /// True when some image or build cache deletion failed.
    #[must_use]
    pub fn some_failed(&self) -> bool {
        self.failed > 0 || self.build_cache.failed > 0
    }

    /// Images the policies selected, over all policies.
    #[must_use]
    pub fn images_matched(&self) -> usize {
        self.matched_by_policy.values().sum()
    }
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

/// Run one pass. `stop` asks it to start no new deletions (in-flight ones finish).
pub async fn run_pass<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Result<PassReport, EngineError> {
    let started = Instant::now();
    let listing = async {
        tokio::try_join!(
            engine.info(),
            engine.list_images(),
            engine.list_containers()
        )
    };
    // Boxed: the disk usage and build cache steps would make every pass future large.
    let (listing, usage) = tokio::join!(listing, Box::pin(engine.disk_usage()));
    let (info, images, containers) = listing?;
    let now = engine_now(&info, now);
    let mut inventory = Inventory {
        images,
        containers,
        build_cache: None,
    };
    let notice = cache::take_disk_usage(&mut inventory, usage, !config.build_cache.is_empty());
    let plan = tag_times::plan_with_tag_times(engine, &mut inventory, config, now).await?;
    let concurrency = config.docker.concurrency;
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
    let results = if opts.dry_run {
        Vec::new()
    } else {
        execute_plan(engine, &plan, &inventory.images, concurrency, opts, stop).await
    };
    let rules = &config.build_cache;
    let cache = Box::pin(cache::run(
        engine,
        &inventory,
        rules,
        now,
        opts.dry_run,
        stop,
        notice,
    ))
    .await;
    let records = inventory.build_cache.as_deref().unwrap_or_default();
    let mut summary = summarize(&plan, &results, opts.dry_run, started.elapsed());
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
    Ok(PassReport {
        engine_id: info.id,
        planned_at: now,
        inventory,
        plan,
        results,
        cache,
        host_hint,
        summary,
    })
}

/// Carry out a plan's deletions (none in a dry run), with a progress bar when asked.
pub async fn execute_plan<E: Engine>(
    engine: &E,
    plan: &Plan,
    images: &[Image],
    concurrency: usize,
    opts: &PassOptions,
    stop: &CancellationToken,
) -> Vec<DeletionResult> {
    if opts.dry_run || plan.deletions.is_empty() {
        return Vec::new();
    }
    let bar = progress_bar(opts.progress, plan.deletions.len());
    let results = execute(engine, plan, images, concurrency, stop, &bar).await;
    bar.finish_and_clear();
    results
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
            Outcome::Deleted => {
                s.deleted += 1;
                s.reclaimed_bytes += r.bytes;
                bump(&mut s.deleted_by_policy, policy, 1);
                bump(&mut s.bytes_by_policy, policy, r.bytes);
            }
            Outcome::UntaggedOnly { .. } => s.untagged_only += 1,
            Outcome::AlreadyGone => s.already_gone += 1,
            Outcome::Skipped { .. } => {
                s.skipped += 1;
                bump(&mut s.kept_by_reason, "skipped", 1);
            }
            Outcome::Failed { .. } => s.failed += 1,
            Outcome::NotAttempted => s.not_attempted += 1,
        }
    }
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
