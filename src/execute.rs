//! Carry out a plan's deletions against an [`Engine`]: bounded concurrency, children
//! before parents, per-image outcomes. Decides nothing the plan did not decide.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures_util::{StreamExt, stream};
use indicatif::ProgressBar;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::engine::{Engine, EngineError};
use crate::inventory::short_id;
use crate::plan::{Decision, Deletion, Plan};

/// What happened to one planned deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Deleted by our own call.
    Deleted,
    /// Deleted by the daemon in cascade when a child was deleted.
    DeletedInCascade { child: String },
    /// 404: someone else deleted it first (not a failure).
    AlreadyGone,
    /// 409 or a last-moment check: the daemon's (or our) reason.
    Skipped { reason: String },
    /// Any other error.
    Failed { error: String },
    /// Not attempted: the pass was asked to stop.
    NotAttempted,
}

/// The outcome of one planned deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionResult {
    /// Index into the plan's decisions.
    pub decision: usize,
    pub outcome: Outcome,
    /// Bytes counted as reclaimed (the plan's estimate, when deleted).
    pub bytes: u64,
}

impl Outcome {
    /// The stable `snake_case` kind, as in JSON.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Deleted => "deleted",
            Outcome::DeletedInCascade { .. } => "deleted_in_cascade",
            Outcome::AlreadyGone => "already_gone",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
            Outcome::NotAttempted => "not_attempted",
        }
    }
}

/// Run the plan's deletions: wave by wave (children before parents), at most
/// `concurrency` calls in flight, stopping before new deletions once `stop` fires.
/// Results come back in plan order.
pub async fn execute<E: Engine>(
    engine: &E,
    plan: &Plan,
    concurrency: usize,
    stop: &CancellationToken,
    progress: &ProgressBar,
) -> Vec<DeletionResult> {
    let cascaded: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    let planned: HashSet<&str> = plan
        .deletions
        .iter()
        .map(|d| plan.decisions[d.decision].image_id.as_str())
        .collect();
    let now_in_use = recheck_in_use(engine, plan).await;
    let mut results: Vec<DeletionResult> = Vec::with_capacity(plan.deletions.len());
    let mut start = 0;
    while start < plan.deletions.len() {
        let wave = plan.deletions[start].wave;
        let end = plan.deletions[start..]
            .iter()
            .position(|d| d.wave != wave)
            .map_or(plan.deletions.len(), |n| start + n);
        let ctx = Ctx {
            engine,
            plan,
            stop,
            cascaded: &cascaded,
            planned: &planned,
            now_in_use: &now_in_use,
        };
        let wave_results: Vec<DeletionResult> = stream::iter(&plan.deletions[start..end])
            .map(|d| {
                let ctx = &ctx;
                async move {
                    let r = ctx.run(d).await;
                    progress.inc(1);
                    r
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        results.extend(wave_results);
        start = end;
    }
    results.sort_by_key(|r| r.decision);
    results
}

/// Containers created since the inventory may now use an image with several references;
/// untagging one of those references would leave it half-untagged, so look again.
async fn recheck_in_use<E: Engine>(engine: &E, plan: &Plan) -> HashMap<String, String> {
    let multi = plan
        .deletions
        .iter()
        .any(|d| plan.decisions[d.decision].references.len() > 1);
    if !multi {
        return HashMap::new();
    }
    match engine.list_containers().await {
        Ok(cs) => cs
            .into_iter()
            .map(|c| (c.image_id, short_id(&c.id).to_owned()))
            .collect(),
        Err(e) => {
            warn!(error = %e, "could not re-check containers; images with several references are skipped");
            plan.deletions
                .iter()
                .map(|d| {
                    (
                        plan.decisions[d.decision].image_id.clone(),
                        "unknown".to_owned(),
                    )
                })
                .collect()
        }
    }
}

struct Ctx<'a, E> {
    engine: &'a E,
    plan: &'a Plan,
    stop: &'a CancellationToken,
    cascaded: &'a Mutex<HashMap<String, String>>,
    planned: &'a HashSet<&'a str>,
    now_in_use: &'a HashMap<String, String>,
}

impl<E: Engine> Ctx<'_, E> {
    async fn run(&self, d: &Deletion) -> DeletionResult {
        let decision = &self.plan.decisions[d.decision];
        let outcome = self.outcome(d, decision).await;
        let bytes = match outcome {
            Outcome::Deleted | Outcome::DeletedInCascade { .. } => d.reclaim_bytes,
            _ => 0,
        };
        log_outcome(decision, &outcome, bytes);
        DeletionResult {
            decision: d.decision,
            outcome,
            bytes,
        }
    }

    async fn outcome(&self, d: &Deletion, decision: &Decision) -> Outcome {
        if let Some(child) = self.cascade_of(&decision.image_id) {
            return Outcome::DeletedInCascade { child };
        }
        if self.stop.is_cancelled() {
            return Outcome::NotAttempted;
        }
        if decision.references.len() > 1 {
            if let Some(c) = self.now_in_use.get(&decision.image_id) {
                return Outcome::Skipped {
                    reason: format!("used by container {c}, created after the inventory"),
                };
            }
        }
        let names: Vec<&str> = if decision.references.is_empty() {
            vec![decision.image_id.as_str()]
        } else {
            decision.references.iter().map(String::as_str).collect()
        };
        let mut removed_any = false;
        for name in names {
            match self.engine.remove_image(name, d.prune_parents).await {
                Ok(report) => {
                    removed_any = true;
                    self.note_cascade(decision, &report.deleted);
                }
                Err(EngineError::NotFound(_)) => {}
                Err(e) => return self.refused(e, removed_any),
            }
        }
        if removed_any {
            Outcome::Deleted
        } else {
            Outcome::AlreadyGone
        }
    }

    fn refused(&self, e: EngineError, partly: bool) -> Outcome {
        let partly = if partly {
            " (after some of its references were removed)"
        } else {
            ""
        };
        match e {
            EngineError::Conflict(msg) => Outcome::Skipped {
                reason: format!("{msg}{partly}"),
            },
            other => Outcome::Failed {
                error: format!("{other}{partly}"),
            },
        }
    }

    fn cascade_of(&self, id: &str) -> Option<String> {
        self.cascaded
            .lock()
            .expect("the lock is never held across a panic")
            .get(id)
            .cloned()
    }

    fn note_cascade(&self, decision: &Decision, deleted: &[String]) {
        let mut map = self
            .cascaded
            .lock()
            .expect("the lock is never held across a panic");
        // The daemon also lists deleted layers; only planned images matter here.
        let others = deleted
            .iter()
            .filter(|id| **id != decision.image_id && self.planned.contains(id.as_str()));
        for id in others {
            debug!(image = %short_id(id), child = %short_id(&decision.image_id), "deleted in cascade");
            map.insert(id.clone(), short_id(&decision.image_id).to_owned());
        }
    }
}

fn log_outcome(decision: &Decision, outcome: &Outcome, bytes: u64) {
    let image = short_id(&decision.image_id);
    let references = decision.references.join(",");
    let policy = decision.policy.as_deref().unwrap_or("");
    let reason = decision.reason.to_string();
    match outcome {
        Outcome::Deleted | Outcome::DeletedInCascade { .. } => {
            info!(
                image,
                references,
                bytes,
                policy,
                reason,
                outcome = outcome.kind(),
                "deleted image"
            );
        }
        Outcome::AlreadyGone => debug!(image, "already gone"),
        Outcome::Skipped { reason: why } => info!(image, references, policy, why, "skipped image"),
        Outcome::Failed { error } => {
            warn!(image, references, policy, error, "could not delete image")
        }
        Outcome::NotAttempted => debug!(image, "not attempted: stopping"),
    }
}
