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
use crate::inventory::{Image, ImageId, short_id};
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
    images: &[Image],
    concurrency: usize,
    stop: &CancellationToken,
    progress: &ProgressBar,
) -> Vec<DeletionResult> {
    let cascaded: Mutex<HashMap<ImageId, String>> = Mutex::new(HashMap::new());
    let planned: HashSet<ImageId> = plan
        .deletions
        .iter()
        .map(|d| images[plan.decisions[d.decision].image].id)
        .collect();
    let now_in_use = recheck_in_use(engine, plan, images).await;
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
            images,
            cascaded: &cascaded,
            planned: &planned,
            now_in_use: &now_in_use,
        };
        let runs = runs(&ctx, &plan.deletions[start..end], progress);
        let wave_results: Vec<DeletionResult> = stream::iter(runs)
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        results.extend(wave_results);
        start = end;
    }
    let mut position = vec![0; plan.decisions.len()];
    for (k, d) in plan.deletions.iter().enumerate() {
        position[d.decision] = k;
    }
    results.sort_by_key(|r| position[r.decision]);
    results
}

/// The deletions of one wave as futures. Spelled out with one named lifetime: a closure
/// inferred at the call site would be higher-ranked and make the pass future not `Send`.
fn runs<'a, E: Engine>(
    ctx: &'a Ctx<'a, E>,
    deletions: &'a [Deletion],
    progress: &'a ProgressBar,
) -> impl Iterator<Item = impl Future<Output = DeletionResult> + 'a> + 'a {
    deletions.iter().map(move |d| ctx.run(d, progress))
}

/// Containers created since the inventory may now use an image with several references;
/// untagging one of those references would leave it half-untagged, so look again.
async fn recheck_in_use<E: Engine>(
    engine: &E,
    plan: &Plan,
    images: &[Image],
) -> HashMap<ImageId, String> {
    let image = |d: &Deletion| &images[plan.decisions[d.decision].image];
    let multi = plan.deletions.iter().any(|d| image(d).references.len() > 1);
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
                .map(|d| (image(d).id, "unknown".to_owned()))
                .collect()
        }
    }
}

struct Ctx<'a, E> {
    engine: &'a E,
    plan: &'a Plan,
    images: &'a [Image],
    stop: &'a CancellationToken,
    cascaded: &'a Mutex<HashMap<ImageId, String>>,
    planned: &'a HashSet<ImageId>,
    now_in_use: &'a HashMap<ImageId, String>,
}

impl<E: Engine> Ctx<'_, E> {
    async fn run(&self, d: &Deletion, progress: &ProgressBar) -> DeletionResult {
        let decision = &self.plan.decisions[d.decision];
        let image = &self.images[decision.image];
        let outcome = self.outcome(d, image).await;
        let bytes = match outcome {
            Outcome::Deleted | Outcome::DeletedInCascade { .. } => d.reclaim_bytes,
            _ => 0,
        };
        log_outcome(decision, image, &outcome, bytes);
        progress.inc(1);
        DeletionResult {
            decision: d.decision,
            outcome,
            bytes,
        }
    }

    async fn outcome(&self, d: &Deletion, image: &Image) -> Outcome {
        if let Some(child) = self.cascade_of(image.id) {
            return Outcome::DeletedInCascade { child };
        }
        if self.stop.is_cancelled() {
            return Outcome::NotAttempted;
        }
        if let Some(c) = self.now_in_use.get(&image.id)
            && image.references.len() > 1
        {
            return Outcome::Skipped {
                reason: format!("used by container {c}, created after the inventory"),
            };
        }
        let id = image.id.to_string();
        let names: Vec<&str> = if image.references.is_empty() {
            vec![id.as_str()]
        } else {
            image.references.iter().map(String::as_str).collect()
        };
        let mut removed_any = false;
        for name in names {
            match self.engine.remove_image(name, d.prune_parents).await {
                Ok(report) => {
                    removed_any = true;
                    self.note_cascade(image, &report.deleted);
                }
                Err(EngineError::NotFound(_)) => {}
                Err(e) => return Self::refused(e, removed_any),
            }
        }
        if removed_any {
            Outcome::Deleted
        } else {
            Outcome::AlreadyGone
        }
    }

    fn refused(e: EngineError, partly: bool) -> Outcome {
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

    fn cascade_of(&self, id: ImageId) -> Option<String> {
        self.cascaded
            .lock()
            .expect("the lock is never held across a panic")
            .get(&id)
            .cloned()
    }

    fn note_cascade(&self, image: &Image, deleted: &[String]) {
        let mut map = self
            .cascaded
            .lock()
            .expect("the lock is never held across a panic");
        // The daemon also lists deleted layers; only planned images matter here.
        let others = deleted
            .iter()
            .filter_map(|id| id.parse::<ImageId>().ok())
            .filter(|id| *id != image.id && self.planned.contains(id));
        for id in others {
            debug!(image = %id.short(), child = %image.id.short(), "deleted in cascade");
            map.insert(id, image.id.short());
        }
    }
}

fn log_outcome(decision: &Decision, image: &Image, outcome: &Outcome, bytes: u64) {
    let references = image.references.join(",");
    let image = image.id.short();
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
            warn!(image, references, policy, error, "could not delete image");
        }
        Outcome::NotAttempted => debug!(image, "not attempted: stopping"),
    }
}
