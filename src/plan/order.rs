//! Turning per-image reasons into a plan: decision order, deletion waves (children before
//! parents) and the reclaim estimate.

use super::decision::{Decision, Deletion, Plan};
use super::graph::{Graph, TIME_KEY_BITS};
use super::reason::{Action, Reason};
use std::sync::Arc;

/// Order decisions (deletions first, in execution order) and compute waves.
pub(super) fn assemble(
    graph: Graph<'_>,
    policy_of: &[Option<usize>],
    names: &[Arc<str>],
    reasons: Vec<Reason>,
) -> Plan {
    let n = graph.len();
    let in_delete: Vec<bool> = reasons
        .iter()
        .map(|r| r.action() == Action::Delete)
        .collect();
    let wave = waves(&graph, &in_delete);
    let order = decision_order(&graph, &reasons, &wave);
    // Deletions come first in plan order.
    let deletions: Vec<Deletion> = order
        .iter()
        .take_while(|&&i| in_delete[i])
        .map(|&i| Deletion {
            decision: i,
            wave: wave[i],
            reclaim_bytes: graph.own_bytes[i],
        })
        .collect();
    let reclaimable_bytes = deletions.iter().map(|d| d.reclaim_bytes).sum();
    let sharing_data = graph.sharing_data;
    // The decisions are the plan's largest part: what only helped to plan goes first.
    drop((graph, wave, in_delete));
    // Moved in inventory order: a sequential pass, where plan order would be a random gather.
    let decisions: Vec<Decision> = reasons
        .into_iter()
        .zip(policy_of.iter().copied())
        .enumerate()
        .map(|(i, (reason, p))| Decision {
            image: i,
            action: reason.action(),
            policy: p.map(|p| Arc::clone(&names[p])),
            reason,
        })
        .collect();
    debug_assert_eq!(decisions.len(), n);
    Plan {
        decisions,
        order,
        deletions,
        reclaimable_bytes,
        sharing_data,
        eviction: None,
    }
}

/// Images in decision order: by action (deletions first), wave, creation time, then ID.
///
/// Action, wave and creation second are packed in one `u64` when the inventory allows it
/// (waves below 2^22, creation times within 2^40 s of each other: always, in practice), so
/// the sort moves 16-byte pairs and never reads the images; otherwise a `u128` packs the
/// full time. Runs of equal keys (images of the same second) are then ordered by full time
/// and ID.
pub(super) fn decision_order(graph: &Graph<'_>, reasons: &[Reason], wave: &[usize]) -> Vec<usize> {
    decision_order_with(graph, reasons, wave, true)
}

/// [`decision_order`], with the `u64` keys allowed or not (tests compare both).
pub(super) fn decision_order_with(
    graph: &Graph<'_>,
    reasons: &[Reason],
    wave: &[usize],
    allow_narrow: bool,
) -> Vec<usize> {
    let secs = |i: usize| graph.created[i] >> (TIME_KEY_BITS - 64);
    let (lo, hi) = (0..graph.len())
        .map(secs)
        .fold((u128::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
    let max_wave = wave.iter().copied().max().unwrap_or(0);
    let narrow = allow_narrow
        && hi.saturating_sub(lo) < 1 << 40
        && max_wave < 1 << 22
        && u32::try_from(graph.len()).is_ok();
    let action = |i: usize| reasons[i].action() as u64;
    if narrow {
        let keyed: Vec<(u64, u32)> = (0..graph.len())
            .zip(0u32..)
            .map(|(i, i32)| {
                let since = u64::try_from(secs(i) - lo).unwrap_or(u64::MAX);
                let wave = wave[i] as u64;
                ((action(i) << 62) | (wave << 40) | since, i32)
            })
            .collect();
        sort_keyed(graph, keyed, |i: u32| i as usize)
    } else {
        // More waves than 2^31 would need more images than memory holds.
        let max = (1u128 << (128 - 2 - TIME_KEY_BITS)) - 1;
        let keyed: Vec<(u128, usize)> = (0..graph.len())
            .map(|i| {
                let wave = (wave[i] as u128).min(max);
                let key =
                    (u128::from(action(i)) << 126) | (wave << TIME_KEY_BITS) | graph.created[i];
                (key, i)
            })
            .collect();
        sort_keyed(graph, keyed, |i: usize| i)
    }
}

/// Sort `(key, image)` pairs by key, then runs of equal keys by full creation time and ID.
fn sort_keyed<K: Ord + Copy, I: Copy + Ord>(
    graph: &Graph<'_>,
    mut keyed: Vec<(K, I)>,
    index: impl Fn(I) -> usize,
) -> Vec<usize> {
    keyed.sort_unstable();
    for run in keyed.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by(|a, b| {
                let (a, b) = (index(a.1), index(b.1));
                (graph.created[a].cmp(&graph.created[b]))
                    .then_with(|| graph.images[a].id.cmp(&graph.images[b].id))
            });
        }
    }
    keyed.into_iter().map(|(_, i)| index(i)).collect()
}

/// Wave 0: no child planned for deletion; otherwise one more than the highest child.
pub(super) fn waves(graph: &Graph<'_>, in_delete: &[bool]) -> Vec<usize> {
    let mut wave = vec![0usize; graph.len()];
    let mut has_deleted_child = vec![false; graph.len()];
    for (i, p) in graph.parent.iter().enumerate() {
        if let Some(p) = *p
            && in_delete[i]
        {
            has_deleted_child[p] = true;
        }
    }
    for leaf in 0..graph.len() {
        if !in_delete[leaf] || has_deleted_child[leaf] {
            continue;
        }
        let (mut child, mut w) = (leaf, 0);
        while let Some(p) = graph.parent[child] {
            if !in_delete[p] || wave[p] > w {
                break;
            }
            w += 1;
            wave[p] = w;
            child = p;
        }
    }
    wave
}
