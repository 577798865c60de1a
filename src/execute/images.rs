//! Carry out a plan's deletions against an [`Engine`]: wave by wave (children before
//! parents), bounded concurrency, every deletion re-checked against the engine first
//! ([`super::identity`]), per-image outcomes. Decides nothing the plan did not decide: it only
//! leaves out what changed since the plan was made.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::{StreamExt, stream};
use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::children::{Offspring, children_if_needed, reason_to_keep};
use super::identity::InUse;
use super::outcome::{DeletionResult, Outcome, UnplannedRemoval};
use super::parents::{Chains, Children};
use crate::engine::{Engine, EngineError};
use crate::inventory::{Image, ImageId, short_id};
use crate::plan::{Decision, Deletion, Plan, Reason};

/// How a finished deletion ended, as far as the deletions of its parents need to know: a
/// parent goes only once its planned children are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Gone,
    NotAttempted,
    /// Still there; the outcome's kind.
    Stayed(&'static str),
}

impl Settled {
    fn of(outcome: &Outcome) -> Self {
        match outcome {
            o if o.is_gone() => Self::Gone,
            Outcome::NotAttempted => Self::NotAttempted,
            o => Self::Stayed(o.kind()),
        }
    }
}

/// Run the plan's deletions: wave by wave (children before parents), at most `concurrency`
/// calls in flight, stopping before new deletions once `stop` fires. A parent whose planned
/// child is still there is not attempted. `vetoed` (by deletion, may be shorter) names the
/// deletions to skip with their reason, without a call (`apply` re-checking a saved plan
/// against the current configuration); their parents stay too. Results come back in plan
/// order.
pub async fn execute<E: Engine>(
    engine: &E,
    plan: &Plan,
    images: &[Image],
    concurrency: usize,
    stop: &CancellationToken,
    progress: &ProgressBar,
    vetoed: &[Option<String>],
) -> Vec<DeletionResult> {
    let run = Run {
        decisions: &plan.decisions,
        deletions: &plan.deletions,
        images,
        concurrency,
        vetoed,
    };
    execute_some(engine, &run, stop, progress).await
}

/// Some deletions of a plan, as [`execute`] runs them: `deletions` index `decisions` (a
/// plan's, whose images are `images`), in waves, children before parents.
pub struct Run<'a> {
    pub decisions: &'a [Decision],
    pub deletions: &'a [Deletion],
    pub images: &'a [Image],
    pub concurrency: usize,
    /// By deletion (may be shorter): deletions to skip with their reason, without a call.
    pub vetoed: &'a [Option<String>],
}

/// Run `run.deletions` as [`execute`] runs a plan's (an eviction runs its waves this way).
/// Results come back in the order of `run.deletions`.
pub async fn execute_some<E: Engine>(
    engine: &E,
    run: &Run<'_>,
    stop: &CancellationToken,
    progress: &ProgressBar,
) -> Vec<DeletionResult> {
    let Run {
        decisions,
        deletions,
        images,
        concurrency,
        vetoed,
    } = *run;
    let position_of = |k: usize| decisions[deletions[k].decision].image;
    let image_of = |k: usize| &images[position_of(k)];
    let chains = Chains::new(images, (0..deletions.len()).map(position_of));
    let children = Children::new(deletions.len(), |k| {
        image_of(k).parent_id.and_then(|p| chains.deletion_of(p))
    });
    let alongside = Mutex::new(HashMap::new());
    // On an engine that deletes parents with children: a listing before each wave.
    let check_children = !engine.refuses_parents_with_children();
    let mut deleted: Vec<ImageId> = Vec::new();
    let mut settled: Vec<Option<Settled>> = vec![None; deletions.len()];
    let mut results: Vec<DeletionResult> = Vec::with_capacity(deletions.len());
    let mut start = 0;
    while start < deletions.len() {
        let wave = deletions[start].wave;
        let end = deletions[start..]
            .iter()
            .position(|d| d.wave != wave)
            .map_or(deletions.len(), |n| start + n);
        let in_use = containers_if_needed(engine, (start..end).map(image_of)).await;
        // One listing per wave at most: on an engine that deletes parents with children,
        // `offspring` covers every planned image, untagged parents included.
        let (offspring, has_children) = if check_children {
            let none = Some(HashMap::new());
            (Some(Offspring::listed(engine, &deleted).await), none)
        } else {
            let wave = &deletions[start..end];
            (None, children_if_needed(engine, decisions, wave).await)
        };
        let ctx = Ctx {
            engine,
            decisions,
            deletions,
            images,
            stop,
            vetoed,
            in_use: in_use.as_ref(),
            has_children: has_children.as_ref(),
            offspring: offspring.as_ref(),
            children: &children,
            settled: &settled,
            chains: &chains,
            alongside: &alongside,
        };
        // Each result goes straight into `results` (a wave can be most of a first pass);
        // `settled` is written once the wave is over, since the wave reads it.
        let first = results.len();
        let mut ks: Vec<usize> = Vec::with_capacity(end - start);
        {
            let mut wave = std::pin::pin!(
                stream::iter(runs(&ctx, start..end, progress)).buffer_unordered(concurrency.max(1))
            );
            while let Some((k, r)) = wave.next().await {
                ks.push(k);
                results.push(r);
            }
        }
        for (k, r) in ks.into_iter().zip(&results[first..]) {
            settled[k] = Some(Settled::of(&r.outcome));
            if r.outcome == Outcome::Deleted {
                deleted.push(image_of(k).id);
            }
        }
        start = end;
    }
    if check_children && !deleted.is_empty() && !stop.is_cancelled() {
        // The last wave's deletions, checked as the next wave's listing checks the others.
        if let Err(e) = Offspring::listed(engine, &deleted).await {
            warn!(error = %e, "could not check whether an image gained a child during the deletions");
        }
    }
    let mut position = vec![0; decisions.len()];
    for (k, d) in deletions.iter().enumerate() {
        position[d.decision] = k;
    }
    // Unstable: the keys are distinct, and a stable sort would copy all the results once more.
    results.sort_unstable_by_key(|r| position[r.decision]);
    results
}

/// The deletions of one wave as futures. Spelled out with one named lifetime: a closure
/// inferred at the call site would be higher-ranked and make the pass future not `Send`.
fn runs<'a, E: Engine>(
    ctx: &'a Ctx<'a, E>,
    wave: std::ops::Range<usize>,
    progress: &'a ProgressBar,
) -> impl Iterator<Item = impl Future<Output = (usize, DeletionResult)> + 'a> + 'a {
    wave.map(move |k| ctx.run(k, progress))
}

/// Untagging one reference of an image that has several is not refused by the daemon when a
/// container uses the image, so such a wave first lists the containers again (`None` when
/// that fails: those images are then skipped). Waves of single-reference images need no
/// listing: deleting by ID, the daemon checks containers itself.
async fn containers_if_needed<'i, E: Engine>(
    engine: &E,
    mut wave: impl Iterator<Item = &'i Image>,
) -> Option<InUse> {
    if wave.all(|i| super::identity::is_single_reference(&i.references, &i.digests)) {
        return Some(InUse::new());
    }
    match engine.list_containers().await {
        Ok(cs) => Some(
            cs.into_iter()
                .map(|c| (c.image_id, short_id(&c.id).to_owned()))
                .collect(),
        ),
        Err(e) => {
            warn!(error = %e, "could not re-check containers; images with several references are skipped in this wave");
            None
        }
    }
}

struct Ctx<'a, E> {
    engine: &'a E,
    decisions: &'a [Decision],
    deletions: &'a [Deletion],
    images: &'a [Image],
    stop: &'a CancellationToken,
    /// Deletions to skip with their reason, by deletion index.
    vetoed: &'a [Option<String>],
    in_use: Option<&'a InUse>,
    /// For waves with untagged parents of deleted images: each listed parent and a child.
    has_children: Option<&'a HashMap<ImageId, ImageId>>,
    /// On an engine that deletes parents with children, the images with children now.
    offspring: Option<&'a Result<Offspring, EngineError>>,
    children: &'a Children,
    /// How the deletions of earlier waves ended, by deletion index.
    settled: &'a [Option<Settled>],
    /// The inventory by ID, parent links and the planned set.
    chains: &'a Chains<'a>,
    /// Planned images an engine deleted along with a child (Podman), with that child.
    alongside: &'a Mutex<HashMap<ImageId, ImageId>>,
}

impl<E: Engine> Ctx<'_, E> {
    async fn run(&self, k: usize, progress: &ProgressBar) -> (usize, DeletionResult) {
        let d: &Deletion = &self.deletions[k];
        let decision = &self.decisions[d.decision];
        let image = &self.images[decision.image];
        let mut unplanned = Vec::new();
        let (outcome, notes) = if let Some(child) = self.went_along(image.id) {
            let note = format!(
                "deleted by the engine along with its child {}",
                child.short()
            );
            (Outcome::Deleted, vec![note])
        } else if let Some(reason) = self.vetoed.get(k).and_then(Option::as_ref) {
            let reason = reason.clone();
            (Outcome::Skipped { reason }, Vec::new())
        } else if self.stop.is_cancelled() {
            (Outcome::NotAttempted, Vec::new())
        } else if let Some(blocked) = self.blocked_by_child(k) {
            (blocked, Vec::new())
        } else if let Some(gained) = self.gained_a_child(decision, image) {
            (gained, Vec::new())
        } else if let Some(reason) = (self.offspring).and_then(|o| reason_to_keep(o, image.id)) {
            (Outcome::Skipped { reason }, Vec::new())
        } else {
            let a = super::identity::delete(self.engine, image, self.chains, self.in_use).await;
            unplanned = a.unplanned;
            self.note_alongside(image.id, &a.also_deleted, &mut unplanned);
            (a.outcome, a.notes)
        };
        for u in &unplanned {
            tracing::error!(
                reference = u.reference.as_deref().unwrap_or("-"),
                deleted = %u.deleted.join(", "),
                while_deleting = %image.id.short(),
                call = %u.call,
                "the engine removed what the plan did not ask for (another actor changed a tag between the re-check and the delete)"
            );
        }
        let bytes = if outcome == Outcome::Deleted {
            d.reclaim_bytes
        } else {
            0
        };
        log_outcome(decision, image, &outcome, bytes, &notes);
        progress.inc(1);
        let result = DeletionResult {
            decision: d.decision,
            outcome,
            bytes,
            unplanned,
        };
        (k, result)
    }

    fn went_along(&self, id: ImageId) -> Option<ImageId> {
        let map = self.alongside.lock().expect("never held across a panic");
        map.get(&id).copied()
    }

    /// Images the engine deleted besides the one asked for (`Deleted` records of images the
    /// inventory knows; the others are layers, or images made after the listing, which the
    /// answer does not tell apart): planned ones are recorded, the others are unplanned
    /// removals.
    fn note_alongside(
        &self,
        child: ImageId,
        deleted: &[ImageId],
        unplanned: &mut Vec<UnplannedRemoval>,
    ) {
        let mut map = self.alongside.lock().expect("never held across a panic");
        for id in deleted.iter().filter(|id| self.chains.knows(**id)) {
            let reported = (unplanned.iter()).any(|u| u.deleted.contains(&id.to_string()));
            if reported {
                // Taken by an untag whose name had moved onto it: reported as unplanned;
                // its own turn finds it gone.
                continue;
            }
            if self.chains.is_planned(*id) {
                map.insert(*id, child);
            } else {
                unplanned.push(UnplannedRemoval {
                    reference: None,
                    deleted: vec![id.to_string()],
                    while_deleting: child.to_string(),
                    call: format!("DELETE /images/{child}"),
                });
            }
        }
    }

    /// An untagged parent planned only because its children go (`parent_of_deleted`) that
    /// has a child now (new since the plan, or one the plan did not list) stays: skipped.
    fn gained_a_child(&self, decision: &Decision, image: &Image) -> Option<Outcome> {
        if !matches!(decision.reason, Reason::ParentOfDeleted { .. }) {
            return None;
        }
        let Some(children) = self.has_children else {
            let reason = "could not re-check its children before deleting it".to_owned();
            return Some(Outcome::Skipped { reason });
        };
        let child = children.get(&image.id)?;
        let reason = format!(
            "it has a child since the inventory ({}): an untagged parent goes with its deleted children only while nothing else needs it",
            child.short()
        );
        Some(Outcome::Skipped { reason })
    }

    /// A planned child that is still on the engine keeps its parent: not attempted.
    fn blocked_by_child(&self, k: usize) -> Option<Outcome> {
        let (c, stayed) = self
            .children
            .of(k)
            .iter()
            .find_map(|&c| match self.settled[c]? {
                Settled::Gone => None,
                other => Some((c, other)),
            })?;
        let Settled::Stayed(kind) = stayed else {
            return Some(Outcome::NotAttempted);
        };
        let child = &self.images[self.decisions[self.deletions[c].decision].image];
        Some(Outcome::Skipped {
            reason: format!("its child {} was not deleted ({kind})", child.id.short()),
        })
    }
}

fn log_outcome(
    decision: &Decision,
    image: &Image,
    outcome: &Outcome,
    bytes: u64,
    notes: &[String],
) {
    let references = image.references.join(",");
    let image = image.id.short();
    let policy = decision.policy.as_deref().unwrap_or("");
    let reason = decision.reason.to_string();
    let notes = notes.join("; ");
    match outcome {
        Outcome::Deleted => {
            info!(
                image,
                references, bytes, policy, reason, notes, "deleted image"
            );
        }
        Outcome::UntaggedOnly { untagged } => {
            let untagged = untagged.join(",");
            warn!(
                image,
                references, policy, untagged, notes, "untagged but not deleted"
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
