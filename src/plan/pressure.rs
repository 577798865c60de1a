//! `when: disk_pressure` policies (kubelet's model, per policy): while the disk is at or
//! over `high`, their candidates are put in eviction order (the policy's `order`: least
//! recently used first by default, or `lfu`, `size`; see `ranking`), and
//! those the estimate needs to reach `low` (usage minus the bytes the plan frees) are
//! planned for deletion; below `high` they delete nothing. The whole order goes to the pass
//! ([`EvictionOrder`]), which measures between waves and stops at `low` — before the
//! estimate is spent, or beyond it.
//!
//! A candidate is a matched image that no safety rule and no `keep_last` keeps. Runs after
//! retention, so the bytes other policies delete count towards `low`. A parent is evicted
//! only once all its children are deleted (the daemon refuses otherwise).

use std::sync::Arc;

use super::eviction::{Evictee, EvictionOrder};
use super::graph::Graph;
use super::ranking::Ranking;
use super::reason::{Action, Reason};
use super::seen::{Seen, Usage};
use super::watermarks::{DiskFigures, inode_pressure, space_pressure};
use crate::config::{Config, DiskConfig, Order, When};
use crate::inventory::DiskUsage;

/// What the eviction reads besides the per-image tables.
pub(super) struct Eviction<'g, 'a> {
    pub graph: &'g Graph<'a>,
    pub config: &'g Config,
    pub names: &'g [Arc<str>],
    pub seen: &'g Seen<'g>,
    pub usage: &'g Usage,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Eviction<'_, '_> {
    /// Decide the candidates of every `when: disk_pressure` policy; over `high`, the whole
    /// eviction order for the pass (also when it is empty: nothing the policies may evict).
    pub fn apply(
        &self,
        policy_of: &[Option<usize>],
        reasons: &mut [Option<Reason>],
    ) -> Option<EvictionOrder> {
        let pressure = |p: &usize| self.config.policies[*p].when == When::DiskPressure;
        if !(0..self.config.policies.len()).any(|p| pressure(&p)) {
            return None;
        }
        let candidates: Vec<usize> = (0..reasons.len())
            .filter(|&i| policy_of[i].is_some_and(|p| pressure(&p)))
            .filter(|&i| is_candidate(reasons[i].as_ref()))
            .collect();
        let policy =
            |i: usize| Arc::clone(&self.names[policy_of[i].expect("candidates matched a policy")]);
        // What `always` policies delete in this plan counts towards `low`.
        let mut is_candidate = vec![false; reasons.len()];
        for &i in &candidates {
            is_candidate[i] = true;
        }
        let deleted: u64 = (0..reasons.len())
            .filter(|&i| !is_candidate[i] && is_delete(reasons[i].as_ref()))
            .map(|i| self.graph.own_bytes[i])
            .sum();
        let figures = match (&self.usage.disk, &self.config.disk) {
            (Some(Ok(u)), Some(disk)) => Arc::new(self.figures(u, disk, deleted)),
            (measured, _) => {
                let error: Arc<str> = match measured {
                    Some(Err(e)) => Arc::from(e.as_str()),
                    _ => Arc::from("the disk was not measured"),
                };
                for &i in &candidates {
                    reasons[i] = Some(Reason::DiskNotMeasured {
                        policy: policy(i),
                        error: Arc::clone(&error),
                    });
                }
                return None;
            }
        };
        for &i in &candidates {
            reasons[i] = Some(Reason::NoDiskPressure {
                policy: policy(i),
                disk: Arc::clone(&figures),
            });
        }
        figures
            .over_high()
            .then(|| self.evict(candidates, &figures, policy_of, reasons))
    }

    /// The order a policy evicts in under pressure (`oldest` is `lru` here, as it always was).
    fn order_of(&self, policy: Option<usize>) -> Order {
        match policy.map(|p| self.config.policies[p].order) {
            Some(o @ (Order::Lfu | Order::Size)) => o,
            _ => Order::Lru,
        }
    }

    /// The resource over `high` that needs the most bytes freed, else the space figures.
    fn figures(&self, u: &DiskUsage, disk: &DiskConfig, deleted: u64) -> DiskFigures {
        let store: u64 = self.graph.own_bytes.iter().sum();
        let (s, ml) = (space_pressure(u, disk.space), disk.space);
        let space = DiskFigures::new(u, "space", s, ml.high, ml.low);
        let inodes = disk.inodes.and_then(|m| {
            let p = inode_pressure(u, m, store)?;
            Some(DiskFigures::new(u, "inodes", p, m.high, m.low))
        });
        let mut pick = match inodes {
            Some(i)
                if i.over_high()
                    && (!space.over_high() || i.to_free_bytes > space.to_free_bytes) =>
            {
                i
            }
            _ => space,
        };
        pick.to_free_bytes = pick.to_free_bytes.saturating_sub(deleted);
        pick
    }

    /// Put the candidates in eviction order (each policy's `order`: least recently used first
    /// by default; [`by_policy_order`] when policies differ), each parent right
    /// after the last of its children (as one unit); plan the deletion of those the estimate needs to free
    /// the figures' bytes.
    fn evict(
        &self,
        mut order: Vec<usize>,
        figures: &Arc<DiskFigures>,
        policy_of: &[Option<usize>],
        reasons: &mut [Option<Reason>],
    ) -> EvictionOrder {
        let policy =
            |i: usize| Arc::clone(&self.names[policy_of[i].expect("candidates matched a policy")]);
        let graph = self.graph;
        let mut live_children = vec![0u32; graph.len()];
        for (c, p) in graph.parent.iter().enumerate() {
            if let Some(p) = *p
                && !is_delete(reasons[c].as_ref())
            {
                live_children[p] += 1;
            }
        }
        let ranking = Ranking::new(graph, self.seen, self.config, self.now);
        let order_of = |i: usize| self.order_of(policy_of[i]);
        let lru_only = order.iter().all(|&i| order_of(i) == Order::Lru);
        if lru_only {
            order.sort_unstable_by(|&a, &b| {
                let key = |i: usize| self.seen.lru_key(i, graph.created[i]);
                key(a)
                    .cmp(&key(b))
                    .then_with(|| graph.images[a].id.cmp(&graph.images[b].id))
            });
        } else {
            order = by_policy_order(&ranking, order, &order_of);
        }
        // A candidate parent goes right after the last of its children, in its unit (an
        // engine that deletes untagged parents along with a child needs them in one call).
        let mut candidate = vec![false; graph.len()];
        for &i in &order {
            candidate[i] = true;
        }
        let mut done = vec![false; graph.len()];
        let (mut entries, mut estimated, mut freed) = (Vec::new(), 0, 0u64);
        for i in order {
            if done[i] || live_children[i] > 0 {
                continue; // taken already, or evicted once its children are
            }
            let (mut next, mut follows) = (Some(i), false);
            while let Some(j) = next.take() {
                let (last_used, last_used_by) = self.seen.last_used(j).unzip();
                let evicted = Reason::DiskPressure {
                    policy: policy(j),
                    last_used,
                    last_used_by,
                    disk: Arc::clone(figures),
                    ranked: ranking.note(order_of(j), j),
                };
                let kept = reasons[j].take().expect("candidates have a reason");
                // The estimate's prefix: planned for deletion while bytes are still missing.
                let within = freed < figures.to_free_bytes;
                let (now, otherwise) = if within {
                    (evicted, kept)
                } else {
                    (kept, evicted)
                };
                reasons[j] = Some(now);
                if within {
                    freed = freed.saturating_add(graph.own_bytes[j]);
                    estimated = entries.len() + 1;
                }
                done[j] = true;
                entries.push(Evictee {
                    decision: j,
                    reclaim_bytes: graph.own_bytes[j],
                    follows,
                    otherwise,
                });
                follows = true;
                if let Some(p) = graph.parent[j] {
                    live_children[p] -= 1;
                    if candidate[p] && !done[p] && live_children[p] == 0 {
                        next = Some(p);
                    }
                }
            }
        }
        EvictionOrder {
            figures: Arc::clone(figures),
            entries,
            estimated,
            store_bytes: graph.own_bytes.iter().sum(),
        }
    }
}

/// The candidates of each order (their policies') sorted in it, the queues merged by their
/// heads, least recently used first (all `lru`: one LRU order, as before).
fn by_policy_order(
    ranking: &Ranking<'_, '_>,
    candidates: Vec<usize>,
    order_of: &dyn Fn(usize) -> Order,
) -> Vec<usize> {
    let mut queues: Vec<(Order, Vec<usize>)> = Vec::new();
    for i in candidates {
        let o = order_of(i);
        match queues.iter_mut().find(|(q, _)| *q == o) {
            Some((_, q)) => q.push(i),
            None => queues.push((o, vec![i])),
        }
    }
    let mut heads: Vec<std::iter::Peekable<std::vec::IntoIter<usize>>> = queues
        .into_iter()
        .map(|(o, mut q)| {
            ranking.sort(o, &mut q);
            q.into_iter().peekable()
        })
        .collect();
    let mut out = Vec::new();
    loop {
        let next = (0..heads.len())
            .filter_map(|k| heads[k].peek().map(|&i| (k, i)))
            .min_by(|a, b| ranking.cmp(Order::Lru, a.1, b.1));
        let Some((k, i)) = next else { break };
        heads[k].next();
        out.push(i);
    }
    out
}

fn is_delete(r: Option<&Reason>) -> bool {
    r.is_some_and(|r| r.action() == Action::Delete)
}

/// Matched and kept by no safety rule and no `keep_last`.
fn is_candidate(r: Option<&Reason>) -> bool {
    is_delete(r)
        || matches!(
            r,
            Some(Reason::WithinPolicy { .. } | Reason::UsedRecently { .. })
        )
}
