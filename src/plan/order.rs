//! Turning per-image reasons into a plan: decision order, deletion waves (children before
//! parents), safe cascades and the reclaim estimate.

use super::graph::Graph;
use super::{Action, Decision, Deletion, Plan, Reason};
use std::sync::Arc;

/// Order decisions (deletions first, in execution order) and compute waves and cascades.
pub(super) fn assemble(
    graph: &Graph<'_>,
    policy_of: &[Option<usize>],
    names: &[Arc<str>],
    reasons: Vec<Reason>,
) -> Plan {
    let n = graph.len();
    let in_delete: Vec<bool> = reasons
        .iter()
        .map(|r| r.action() == Action::Delete)
        .collect();
    let wave = waves(graph, &in_delete);
    // Sort keys gathered once, so that the sort touches neither reasons nor images.
    let keys: Vec<(Action, usize, i64, u32)> = (0..n)
        .map(|i| {
            let created = graph.images[i].created;
            (
                reasons[i].action(),
                wave[i],
                created.timestamp(),
                created.timestamp_subsec_nanos(),
            )
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| {
        keys[a]
            .cmp(&keys[b])
            .then_with(|| graph.images[a].id.cmp(&graph.images[b].id))
    });
    let mut reasons: Vec<Option<Reason>> = reasons.into_iter().map(Some).collect();
    let mut decisions = Vec::with_capacity(n);
    let mut deletions = Vec::new();
    let mut reclaimable_bytes = 0;
    for (pos, &i) in order.iter().enumerate() {
        let reason = reasons[i]
            .take()
            .expect("each image is placed exactly once");
        if in_delete[i] {
            reclaimable_bytes += graph.own_bytes[i];
            deletions.push(Deletion {
                decision: pos,
                prune_parents: cascade_is_safe(graph, &in_delete, i),
                wave: wave[i],
                reclaim_bytes: graph.own_bytes[i],
            });
        }
        decisions.push(Decision {
            image: i,
            action: reason.action(),
            policy: policy_of[i].map(|p| Arc::clone(&names[p])),
            reason,
        });
    }
    Plan {
        decisions,
        deletions,
        reclaimable_bytes,
    }
}

/// Wave 0: no child planned for deletion; otherwise one more than the highest child.
fn waves(graph: &Graph<'_>, in_delete: &[bool]) -> Vec<usize> {
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

/// The daemon may delete untagged parents in cascade only when each of them, up to
/// the first tagged ancestor, is planned for deletion anyway.
fn cascade_is_safe(graph: &Graph<'_>, in_delete: &[bool], i: usize) -> bool {
    let mut next = graph.parent[i];
    while let Some(p) = next {
        if graph.tagged[p] {
            return true;
        }
        if !in_delete[p] {
            return false;
        }
        next = graph.parent[p];
    }
    true
}
