//! One garbage-collection pass: inventory → plan → execute → report.
//!
//! Shared by `prune`, `plan` and the agent. Fails as a whole only when the inventory
//! cannot be read; per-image failures are outcomes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{Engine, EngineError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::debug;

use crate::execute::{DeletionResult, Outcome, execute};
use crate::inventory::{Inventory, short_id};
use crate::plan::{self, Action, Plan};

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
}

/// Everything one pass produced.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    pub plan: Plan,
    pub results: Vec<DeletionResult>,
    pub summary: Summary,
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
    let (images, containers) = tokio::try_join!(engine.list_images(), engine.list_containers())?;
    let inventory = Inventory { images, containers };
    let plan = plan::plan(&inventory, config, now);
    debug!(
        images = plan.decisions.len(),
        deletions = plan.deletions.len(),
        reclaimable_bytes = plan.reclaimable_bytes,
        "planned"
    );
    for d in &plan.decisions {
        debug!(image = %short_id(&d.image_id), action = %d.action, reason = %d.reason, "decision");
    }
    let results = if opts.dry_run || plan.deletions.is_empty() {
        Vec::new()
    } else {
        let bar = progress_bar(opts.progress, plan.deletions.len());
        let r = execute(engine, &plan, config.docker.concurrency, stop, &bar).await;
        bar.finish_and_clear();
        r
    };
    let summary = summarize(&plan, &results, opts.dry_run, started.elapsed());
    Ok(PassReport {
        plan,
        results,
        summary,
    })
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
            *s.matched_by_policy.entry(p.clone()).or_default() += 1;
        }
        match d.action {
            Action::Keep => {
                s.kept += 1;
                *s.kept_by_reason
                    .entry(d.reason.kind().to_owned())
                    .or_default() += 1;
            }
            Action::Untouched => s.untouched += 1,
            Action::Delete => {}
        }
    }
    for r in results {
        let policy = plan.decisions[r.decision]
            .policy
            .clone()
            .unwrap_or_default();
        match &r.outcome {
            Outcome::Deleted | Outcome::DeletedInCascade { .. } => {
                if matches!(r.outcome, Outcome::Deleted) {
                    s.deleted += 1;
                } else {
                    s.cascaded += 1;
                }
                s.reclaimed_bytes += r.bytes;
                *s.deleted_by_policy.entry(policy.clone()).or_default() += 1;
                *s.bytes_by_policy.entry(policy).or_default() += r.bytes;
            }
            Outcome::AlreadyGone => s.already_gone += 1,
            Outcome::Skipped { .. } => {
                s.skipped += 1;
                *s.kept_by_reason.entry("skipped".to_owned()).or_default() += 1;
            }
            Outcome::Failed { .. } => s.failed += 1,
            Outcome::NotAttempted => s.not_attempted += 1,
        }
    }
    s.deleted_total = s.deleted + s.cascaded;
    s
}
