//! The counts over one pass (the numbers of its report): a plan and its outcomes, how the
//! deletions waited for builds, and the build cache's own counts beside them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::build_cache_summary::CacheSummary;
use super::outcome::{DeletionResult, Outcome};
use crate::builds::{BuildWait, GateOutcome};
use crate::plan::{Action, Plan, Reason};

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
    /// Bytes the image deletions freed: `measured_bytes` when the pass measured the
    /// filesystem around them, else the estimate less what the build cache still holds.
    pub reclaimed_bytes: u64,
    /// The plan's estimate of what the deleted images free (each layer counted once).
    pub estimated_bytes: u64,
    /// Of the deleted images' layers, bytes the build cache still holds (its records that
    /// were shared with an image before the deletions and are private after): they are
    /// freed only when the build cache goes.
    pub held_by_build_cache_bytes: u64,
    /// The filesystem's gain in available bytes over the image deletions (`statvfs` before
    /// and after; 0 when it lost space meanwhile), when the pass measured the disk.
    pub measured_bytes: Option<u64>,
    /// What `measured_bytes` measured: the path given to `statvfs`.
    pub measured_on: Option<String>,
    /// The pass evicted under disk pressure and the disk is still at or over `high`, with
    /// nothing left that the `disk_pressure` policies may evict.
    pub disk_pressure_stuck: bool,
    pub kept: usize,
    pub untouched: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Planned but not attempted (stop requested).
    pub not_attempted: usize,
    /// What the engine removed, by its own answers, that the plan did not ask for
    /// (another actor changed a tag inside the delete window): each one is logged at error
    /// level and listed in the JSON report, and the run exits 1.
    pub unplanned_removals: usize,
    /// Images selected by each policy (not counting the untagged parents that went with a
    /// policy's deletions: `deleted_by_policy` and `bytes_by_policy` count those).
    pub matched_by_policy: BTreeMap<String, usize>,
    pub deleted_by_policy: BTreeMap<String, usize>,
    pub bytes_by_policy: BTreeMap<String, u64>,
    /// Images the plan keeps, by reason kind (`in_use`, `protected_reference`, …); deletions
    /// the daemon refused are counted in `skipped`, not here.
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
    /// The disk's used and `high` ratios (0–1), when the pass measured the disk.
    #[serde(skip)]
    pub disk: Option<(f64, f64)>,
    /// The build cache section, counted separately from images.
    pub build_cache: CacheSummary,
}

impl Summary {
    /// Settle the bytes figures: what the build cache still holds of the deleted images'
    /// layers, and the filesystem's measurement (`on`, bytes gained) when there is one.
    pub fn settle_bytes(&mut self, held_by_build_cache: u64, measured: Option<(String, u64)>) {
        self.held_by_build_cache_bytes = held_by_build_cache;
        self.reclaimed_bytes = match measured {
            Some((on, bytes)) => {
                self.measured_on = Some(on);
                self.measured_bytes = Some(bytes);
                bytes
            }
            None => self.estimated_bytes.saturating_sub(held_by_build_cache),
        };
    }

    /// True when some image or build cache deletion failed, or the engine removed something
    /// the plan did not ask for.
    #[must_use]
    pub fn some_failed(&self) -> bool {
        self.failed > 0 || self.build_cache.failed > 0 || self.unplanned_removals > 0
    }

    /// Images the policies selected, over all policies.
    #[must_use]
    pub fn images_matched(&self) -> usize {
        self.matched_by_policy.values().sum()
    }
}

/// Add how the deletions waited for builds to a summary; `deletions` were held back unless
/// the wait ended clear.
pub fn count_build_wait(summary: &mut Summary, builds: Option<&BuildWait>, deletions: usize) {
    if let Some(wait) = builds {
        summary.build_deferrals = wait.deferrals;
        summary.build_wait_secs = Some(wait.waited_secs);
        if wait.outcome != GateOutcome::Clear {
            summary.deferred = deletions;
        }
    }
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
        if let Some(p) = &d.policy
            && !matches!(d.reason, Reason::ParentOfDeleted { .. })
        {
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
        s.unplanned_removals += r.unplanned.len();
        let policy = plan.decisions[r.decision].policy.as_deref().unwrap_or("");
        match &r.outcome {
            Outcome::Deleted => {
                s.deleted += 1;
                s.estimated_bytes += r.bytes;
                s.reclaimed_bytes += r.bytes;
                bump(&mut s.deleted_by_policy, policy, 1);
                bump(&mut s.bytes_by_policy, policy, r.bytes);
            }
            Outcome::UntaggedOnly { .. } => s.untagged_only += 1,
            Outcome::AlreadyGone => s.already_gone += 1,
            Outcome::Skipped { .. } => s.skipped += 1,
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
