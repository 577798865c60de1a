//! `when: disk_pressure` policies (kubelet's model, per policy): while the disk is at or
//! over `high`, their candidates are evicted least recently used first until the estimate
//! (usage minus the bytes the plan frees) reaches `low`; below `high` they delete nothing.
//!
//! A candidate is a matched image that no safety rule and no `keep_last` keeps. Runs after
//! retention, so the bytes other policies delete count towards `low`. A parent is evicted
//! only once all its children are deleted (the daemon refuses otherwise).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::graph::Graph;
use super::seen::{Seen, Usage};
use super::{Action, Reason};
use crate::config::{Config, DiskConfig, When};
use crate::disk::{DiskUsage, Pressure};

/// The disk figures a pressure decision was made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFigures {
    /// What was measured: the path given to `statvfs`, or `api`.
    pub measured: String,
    /// `space` or `inodes`: the resource the decision is about.
    pub resource: String,
    /// Used, in tenths of a percent, rounded down (kubelet's formula).
    pub used_permille: u32,
    pub high_percent: u8,
    pub low_percent: u8,
    /// Bytes to free to reach `low` (for inodes: the share of the images' bytes).
    pub to_free_bytes: u64,
}

impl DiskFigures {
    fn new(usage: &DiskUsage, resource: &str, p: Pressure, high: u8, low: u8) -> Self {
        // Rounded down: 84.99 % is not over a `high` of 85 (rounding would evict early).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..=1000
        let used_permille = (p.used_percent * 10.0).floor().clamp(0.0, 1000.0) as u32;
        Self {
            measured: usage.source.clone(),
            resource: resource.to_owned(),
            used_permille,
            high_percent: high,
            low_percent: low,
            to_free_bytes: p.to_free_bytes,
        }
    }

    /// Whether usage is at or over `high`.
    #[must_use]
    pub fn over_high(&self) -> bool {
        self.used_permille >= u32::from(self.high_percent) * 10
    }
}

/// What the eviction reads besides the per-image tables.
pub(super) struct Eviction<'g, 'a> {
    pub graph: &'g Graph<'a>,
    pub config: &'g Config,
    pub names: &'g [Arc<str>],
    pub seen: &'g Seen<'g>,
    pub usage: &'g Usage,
}

impl Eviction<'_, '_> {
    /// Decide the candidates of every `when: disk_pressure` policy.
    pub fn apply(&self, policy_of: &[Option<usize>], reasons: &mut [Option<Reason>]) {
        let pressured = |p: Option<usize>| {
            p.is_some_and(|p| self.config.policies[p].when == When::DiskPressure)
        };
        let candidates: Vec<usize> = (0..reasons.len())
            .filter(|&i| pressured(policy_of[i]) && is_candidate(reasons[i].as_ref()))
            .collect();
        if candidates.is_empty() {
            return;
        }
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
                return;
            }
        };
        for &i in &candidates {
            reasons[i] = Some(Reason::NoDiskPressure {
                policy: policy(i),
                disk: Arc::clone(&figures),
            });
        }
        if figures.over_high() {
            self.evict(candidates, &figures, &policy, reasons);
        }
    }

    /// The resource over `high` that needs the most bytes freed, else the space figures.
    fn figures(&self, u: &DiskUsage, disk: &DiskConfig, deleted: u64) -> DiskFigures {
        let store: u64 = self.graph.own_bytes.iter().sum();
        let (s, ml) = (u.space_pressure(disk.space), disk.space);
        let space = DiskFigures::new(u, "space", s, ml.high, ml.low);
        let inodes = disk.inodes.and_then(|m| {
            let p = u.inode_pressure(m, store)?;
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

    /// Evict least recently used first until the figures' bytes are freed.
    fn evict(
        &self,
        mut order: Vec<usize>,
        figures: &Arc<DiskFigures>,
        policy: &dyn Fn(usize) -> Arc<str>,
        reasons: &mut [Option<Reason>],
    ) {
        let graph = self.graph;
        let mut live_children = vec![0u32; graph.len()];
        for (c, p) in graph.parent.iter().enumerate() {
            if let Some(p) = *p
                && !is_delete(reasons[c].as_ref())
            {
                live_children[p] += 1;
            }
        }
        order.sort_unstable_by(|&a, &b| {
            let key = |i: usize| self.seen.lru_key(i, graph.created[i]);
            key(a)
                .cmp(&key(b))
                .then_with(|| graph.images[a].id.cmp(&graph.images[b].id))
        });
        let mut deferred = vec![false; graph.len()];
        let mut freed = 0u64;
        for i in order {
            if freed >= figures.to_free_bytes {
                break;
            }
            if live_children[i] > 0 {
                deferred[i] = true; // evicted once its children are
                continue;
            }
            let mut next = Some(i);
            while let Some(j) = next.take() {
                let (last_used, last_used_by) = self.seen.last_used(j).unzip();
                reasons[j] = Some(Reason::DiskPressure {
                    policy: policy(j),
                    last_used,
                    last_used_by,
                    disk: Arc::clone(figures),
                });
                freed = freed.saturating_add(graph.own_bytes[j]);
                if let Some(p) = graph.parent[j] {
                    live_children[p] -= 1;
                    if deferred[p] && live_children[p] == 0 && freed < figures.to_free_bytes {
                        next = Some(p);
                    }
                }
            }
        }
    }
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
