//! Deleting a plan's images when the disk is over `high` (the plan has an
//! [`EvictionOrder`]): first the deletions that have nothing to do with the pressure, then
//! the `disk_pressure` candidates in waves — each wave the next candidates whose estimate
//! covers the bytes still to free, then a measurement — until the disk is measured at `low`
//! or no candidate is left; last, the other policies' deletions that are parents of a
//! candidate (they wait for it). The estimate only orders and bounds the work: nothing
//! outside the order is evicted, in no other order.
//!
//! The plan is then rewritten to what was done ([`rewrite`]): candidates beyond the estimate
//! that were evicted become `disk_pressure` deletions, candidates within it that were not
//! needed become `no_disk_pressure`.

use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::disk::Gauge;
use super::evict_plan::{Layout, rewrite, wave_deletions};
use crate::config::DiskConfig;
use crate::engine::Engine;
use crate::execute::{
    DeletionResult, EvictionEnd, EvictionReport, EvictionWave, Outcome, Run, execute_some,
};
use crate::inventory::{IdIndex, Image};
use crate::plan::{Deletion, EvictionOrder, Plan};

/// What the eviction reads and where it deletes.
pub(super) struct Evictor<'a, E> {
    /// The engine, watched: when it goes away `stop` fires.
    pub engine: &'a E,
    pub images: &'a [Image],
    pub disk: &'a DiskConfig,
    pub gauge: &'a Gauge,
    pub concurrency: usize,
    pub stop: &'a CancellationToken,
    pub progress: &'a ProgressBar,
}

/// The inventory's parent links by position, and which images are gone so far.
struct Tree {
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    gone: Vec<bool>,
}

impl Tree {
    fn new(images: &[Image]) -> Self {
        let index = IdIndex::new(images);
        let parent: Vec<Option<usize>> = (images.iter())
            .map(|i| i.parent_id.and_then(|p| index.position(&p)))
            .collect();
        let mut children = vec![Vec::new(); images.len()];
        for (c, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                children[p].push(c);
            }
        }
        let gone = vec![false; images.len()];
        Self {
            parent,
            children,
            gone,
        }
    }

    /// Mark the images `results` removed as gone.
    fn settle(&mut self, plan: &Plan, results: &[DeletionResult]) {
        for r in results.iter().filter(|r| r.outcome.is_gone()) {
            self.gone[plan.decisions[r.decision].image] = true;
        }
    }

    /// A child of `image` that is still there (outside `now`, the images of this call).
    fn staying_child(&self, image: usize, now: &[bool]) -> Option<usize> {
        let now = |c: usize| now.get(c).copied().unwrap_or(false);
        (self.children[image].iter().copied()).find(|&c| !self.gone[c] && !now(c))
    }
}

impl<E: Engine> Evictor<'_, E> {
    /// Run `plan`'s deletions and evict from `order` in measured waves; rewrite the plan to
    /// what was done. Results come back in the rewritten plan's deletion order.
    pub async fn run(
        &self,
        plan: &mut Plan,
        mut order: EvictionOrder,
    ) -> (Vec<DeletionResult>, EvictionReport) {
        let mut tree = Tree::new(self.images);
        let Layout { early, late } = Layout::new(plan, &order, &tree.parent);
        let results = self.execute(plan, &early).await;
        tree.settle(plan, &results);
        let mut done = Done {
            parts: vec![early],
            deleted_bytes: results.iter().map(|r| r.bytes).sum(),
            results,
            late,
        };
        let mut report = Self::report(&order);
        let mut next = 0;
        report.end = loop {
            if self.stop.is_cancelled() {
                break EvictionEnd::Stopped;
            }
            let usage = match self.gauge.measure_on(self.engine).await {
                Ok(u) => u,
                Err(error) => {
                    warn!(%error, "cannot measure the disk again: evicting what the estimate planned, no more");
                    if next < order.estimated {
                        let range = next..order.estimated;
                        let wave = self.wave(plan, &order, range, &mut tree, &mut done).await;
                        report.waves.push(wave);
                        next = order.estimated;
                    }
                    break EvictionEnd::NotMeasured { error };
                }
            };
            let used = order.used_permille(&usage);
            report.final_permille = Some(used);
            if order.at_low(&usage, self.disk) {
                break EvictionEnd::LowReached;
            }
            let missing = order.to_free(&usage, self.disk, done.deleted_bytes).max(1);
            if next == order.entries.len() {
                report.stuck = order.over_high(&usage, self.disk);
                break EvictionEnd::NothingLeft;
            }
            // The other policies' parents still waiting for a candidate go with it: their
            // estimate counts towards this wave (measuring after it tells what they freed).
            let waiting: u64 = done.late.iter().map(|d| d.reclaim_bytes).sum();
            let end = order.wave_end(next, missing.saturating_sub(waiting));
            if end > order.estimated {
                let beyond = end - next.max(order.estimated);
                self.progress.inc_length(beyond as u64);
            }
            let mut wave = self
                .wave(plan, &order, next..end, &mut tree, &mut done)
                .await;
            wave.used_permille_before = used;
            info!(
                wave = report.waves.len() + 1,
                images = wave.images,
                deleted = wave.deleted,
                estimated_bytes = wave.estimated_bytes,
                used_permille = used,
                missing_bytes = missing,
                "evicted a wave under disk pressure"
            );
            report.waves.push(wave);
            next = end;
        };
        report.taken = next;
        // Parents of candidates that were not evicted stay.
        let left = std::mem::take(&mut done.late);
        for d in &left {
            let image = plan.decisions[d.decision].image;
            let outcome = match tree.staying_child(image, &[]) {
                _ if self.stop.is_cancelled() => Outcome::NotAttempted,
                Some(c) => Outcome::Skipped {
                    reason: format!(
                        "its child {} is still there (not evicted)",
                        self.images[c].id.short()
                    ),
                },
                None => Outcome::NotAttempted,
            };
            done.results.push(DeletionResult {
                decision: d.decision,
                outcome,
                bytes: 0,
                unplanned: Vec::new(),
            });
        }
        done.parts.push(left);
        let stayed = (report.end == EvictionEnd::Stopped).then(|| not_attempted(&order, next));
        let Done {
            parts, mut results, ..
        } = done;
        rewrite(
            plan,
            &mut order,
            next,
            stayed.as_deref(),
            parts,
            &mut results,
        );
        (results, report)
    }

    /// The report before any wave.
    fn report(order: &EvictionOrder) -> EvictionReport {
        let f = &order.figures;
        EvictionReport {
            measured: f.measured.clone(),
            resource: f.resource.clone(),
            high_percent: f.high_percent,
            low_percent: f.low_percent,
            planned_permille: f.used_permille,
            final_permille: None,
            candidates: order.entries.len(),
            estimated: order.estimated,
            taken: 0,
            waves: Vec::new(),
            end: EvictionEnd::NothingLeft,
            stuck: false,
        }
    }

    async fn execute(&self, plan: &Plan, deletions: &[Deletion]) -> Vec<DeletionResult> {
        if deletions.is_empty() {
            return Vec::new();
        }
        let run = Run {
            decisions: &plan.decisions,
            deletions,
            images: self.images,
            concurrency: self.concurrency,
            vetoed: &[],
        };
        execute_some(self.engine, &run, self.stop, self.progress).await
    }

    /// Evict `order.entries[range]`: a candidate whose child is still there is skipped (the
    /// engine would refuse it, or delete it from under the child); the rest are deleted
    /// children first. Then the other policies' deletions whose children are all gone now.
    async fn wave(
        &self,
        plan: &Plan,
        order: &EvictionOrder,
        range: std::ops::Range<usize>,
        tree: &mut Tree,
        done: &mut Done,
    ) -> EvictionWave {
        let chunk = &order.entries[range];
        let all = wave_deletions(chunk, plan, &tree.parent);
        let mut in_wave = vec![false; tree.gone.len()];
        for e in chunk {
            in_wave[plan.decisions[e.decision].image] = true;
        }
        let mut results = Vec::new();
        let mut go = Vec::with_capacity(all.len());
        // Children before parents: a skipped child is out of the wave before its parent looks.
        for d in &all {
            let image = plan.decisions[d.decision].image;
            match tree.staying_child(image, &in_wave) {
                Some(c) => {
                    in_wave[image] = false;
                    let reason = format!("its child {} is still there", self.images[c].id.short());
                    results.push(skipped(d.decision, reason));
                }
                None => go.push(d.clone()),
            }
        }
        results.extend(self.execute(plan, &go).await);
        tree.settle(plan, &results);
        let wave = EvictionWave {
            images: chunk.len(),
            deleted: (results.iter())
                .filter(|r| r.outcome == Outcome::Deleted)
                .count(),
            estimated_bytes: chunk.iter().map(|e| e.reclaim_bytes).sum(),
            used_permille_before: 0,
        };
        done.record(all, results);
        let (ready, rest) = ready(std::mem::take(&mut done.late), plan, tree);
        done.late = rest;
        let late = self.execute(plan, &ready).await;
        tree.settle(plan, &late);
        done.record(ready, late);
        wave
    }
}

/// What the deletions did so far, in execution order.
struct Done {
    /// The deletions, part by part (the early ones, each wave, the parents that followed).
    parts: Vec<Vec<Deletion>>,
    results: Vec<DeletionResult>,
    /// Estimated bytes of the images deleted so far.
    deleted_bytes: u64,
    /// Other policies' deletions still waiting for a candidate child.
    late: Vec<Deletion>,
}

impl Done {
    fn record(&mut self, part: Vec<Deletion>, results: Vec<DeletionResult>) {
        let deleted = results.iter().filter(|r| r.outcome == Outcome::Deleted);
        self.deleted_bytes += deleted.map(|r| r.bytes).sum::<u64>();
        self.results.extend(results);
        if !part.is_empty() {
            self.parts.push(part);
        }
    }
}

/// Of `late` (in plan order, children first), those whose children are all gone or go
/// with them now, and the rest.
fn ready(late: Vec<Deletion>, plan: &Plan, tree: &Tree) -> (Vec<Deletion>, Vec<Deletion>) {
    let mut batch = vec![false; tree.gone.len()];
    let (mut go, mut wait) = (Vec::new(), Vec::new());
    for d in late {
        let image = plan.decisions[d.decision].image;
        if tree.staying_child(image, &batch).is_none() {
            batch[image] = true;
            go.push(d);
        } else {
            wait.push(d);
        }
    }
    (go, wait)
}

fn skipped(decision: usize, reason: String) -> DeletionResult {
    DeletionResult {
        decision,
        outcome: Outcome::Skipped { reason },
        bytes: 0,
        unplanned: Vec::new(),
    }
}

/// The estimate's candidates from `next` on, which a stopping pass did not attempt.
fn not_attempted(order: &EvictionOrder, next: usize) -> Vec<usize> {
    let within = next.min(order.estimated)..order.estimated;
    order.entries[within].iter().map(|e| e.decision).collect()
}
