//! The plan around an eviction ([`super::evict`]): which of its deletions run before the
//! waves and which wait for candidates ([`Layout`]), each wave's deletions children first
//! ([`wave_deletions`]), and the plan rewritten to what was done ([`rewrite`]). Pure
//! bookkeeping on plain values.

use rustc_hash::FxHashMap;

use crate::execute::{DeletionResult, Outcome};
use crate::plan::{Action, Deletion, Evictee, EvictionOrder, Plan};

/// The plan's deletions that are not candidates: `early` ones run before the waves; `late`
/// ones are parents of a candidate (another policy deletes them) and run after the waves,
/// once their children are gone.
pub(super) struct Layout {
    pub early: Vec<Deletion>,
    pub late: Vec<Deletion>,
}

impl Layout {
    /// Split `plan`'s deletions; `parent` is the inventory's parent links by position.
    pub fn new(plan: &Plan, order: &EvictionOrder, parent: &[Option<usize>]) -> Self {
        let image = |d: usize| plan.decisions[d].image;
        let mut candidate = vec![false; parent.len()];
        let mut waits = vec![false; parent.len()];
        for e in &order.entries {
            candidate[image(e.decision)] = true;
        }
        for e in &order.entries {
            let mut next = parent[image(e.decision)];
            while let Some(p) = next {
                if waits[p] {
                    break; // its ancestors are marked already
                }
                waits[p] = true;
                next = parent[p];
            }
        }
        let (mut early, mut late) = (Vec::new(), Vec::new());
        for d in plan
            .deletions
            .iter()
            .filter(|d| !candidate[image(d.decision)])
        {
            if waits[image(d.decision)] {
                late.push(d.clone());
            } else {
                early.push(d.clone());
            }
        }
        Self { early, late }
    }
}

/// The deletions of one wave: its candidates, children before parents (a parent comes after
/// its children in eviction order, so one forward walk numbers the waves).
pub(super) fn wave_deletions(
    chunk: &[Evictee],
    plan: &Plan,
    parent: &[Option<usize>],
) -> Vec<Deletion> {
    let image = |d: usize| plan.decisions[d].image;
    let at: FxHashMap<usize, usize> = (chunk.iter().enumerate())
        .map(|(k, e)| (image(e.decision), k))
        .collect();
    let mut wave = vec![0usize; chunk.len()];
    for (k, e) in chunk.iter().enumerate() {
        if let Some(&pk) = parent[image(e.decision)].and_then(|p| at.get(&p)) {
            wave[pk] = wave[pk].max(wave[k] + 1);
        }
    }
    let mut deletions: Vec<Deletion> = (chunk.iter().zip(&wave))
        .map(|(e, &w)| Deletion {
            decision: e.decision,
            wave: w,
            reclaim_bytes: e.reclaim_bytes,
        })
        .collect();
    deletions.sort_by_key(|d| d.wave); // stable: eviction order within a wave
    deletions
}

/// Rewrite `plan` to what the eviction did: candidates beyond the estimate that were taken
/// (`taken` is how many of the order's entries were) become deletions with their
/// `disk_pressure` reason; candidates within it that were not taken become
/// `no_disk_pressure` — unless the pass stopped (`stayed` lists them: they stay planned and
/// are `not_attempted`). The deletions are `parts` in execution order (waves renumbered to
/// follow each other), and the results follow their order.
pub(super) fn rewrite(
    plan: &mut Plan,
    order: &mut EvictionOrder,
    taken: usize,
    stayed: Option<&[usize]>,
    parts: Vec<Vec<Deletion>>,
    results: &mut Vec<DeletionResult>,
) {
    for (k, e) in order.entries.iter_mut().enumerate() {
        let flip = if k < order.estimated {
            k >= taken && stayed.is_none()
        } else {
            k < taken
        };
        if flip {
            let d = &mut plan.decisions[e.decision];
            std::mem::swap(&mut d.reason, &mut e.otherwise);
            d.action = d.reason.action();
        }
    }
    let mut deletions = Vec::new();
    let mut base = 0;
    let mut append = |part: Vec<Deletion>, deletions: &mut Vec<Deletion>| {
        let first = part.iter().map(|d| d.wave).min().unwrap_or(0);
        let mut last = base;
        for mut d in part {
            d.wave = d.wave - first + base;
            last = last.max(d.wave + 1);
            deletions.push(d);
        }
        base = last;
    };
    for part in parts {
        append(part, &mut deletions);
    }
    if let Some(stayed) = stayed {
        let bytes: FxHashMap<usize, u64> = (order.entries.iter())
            .map(|e| (e.decision, e.reclaim_bytes))
            .collect();
        let part = (stayed.iter())
            .map(|&decision| Deletion {
                decision,
                wave: 0,
                reclaim_bytes: bytes.get(&decision).copied().unwrap_or(0),
            })
            .collect();
        append(part, &mut deletions);
        results.extend(stayed.iter().map(|&decision| DeletionResult {
            decision,
            outcome: Outcome::NotAttempted,
            bytes: 0,
            unplanned: Vec::new(),
        }));
    }
    let mut position = vec![usize::MAX; plan.decisions.len()];
    for (k, d) in deletions.iter().enumerate() {
        position[d.decision] = k;
    }
    plan.order = (deletions.iter().map(|d| d.decision))
        .chain(
            plan.order
                .iter()
                .copied()
                .filter(|&i| position[i] == usize::MAX),
        )
        .collect();
    plan.reclaimable_bytes = deletions.iter().map(|d| d.reclaim_bytes).sum();
    debug_assert_eq!(
        plan.decisions
            .iter()
            .filter(|d| d.action == Action::Delete)
            .count(),
        deletions.len(),
        "every deletion is planned, and every planned deletion listed"
    );
    plan.deletions = deletions;
    results.sort_by_key(|r| position[r.decision]);
}
