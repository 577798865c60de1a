//! The pure build cache planner: `(records, rules, images, now) -> CachePlan`.
//!
//! Every record gets an action and a reason. Steps: shared records beyond what the `images`
//! listed images can hold are taken as private (`unheld`); in-use records are kept; the first rule
//! that selects a record decides; `unused_for` deletes idle records; `keep_storage` deletes
//! the least recently used of a rule's records until they fit; a record planned for deletion
//! that another kept record builds on is kept (the engine refuses it anyway); deletions run
//! children before parents. No I/O, no clock, no bollard types.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::reason::CacheReason;
use super::unheld::unheld;
use crate::config::CacheRule;
use crate::inventory::CacheRecord;
use crate::plan::reason::Action;

/// The decision for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheDecision {
    /// Index of the record in the list the plan was made from (and of this decision).
    pub record: usize,
    pub action: Action,
    /// The rule that selected the record, if any.
    pub rule: Option<Arc<str>>,
    pub reason: CacheReason,
}

/// One record to delete, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheDeletion {
    /// Index into [`CachePlan::decisions`].
    pub decision: usize,
    /// 0 for records no planned deletion builds on; parents come after all their children.
    pub wave: usize,
    /// Bytes this deletion frees: the record's size, 0 for a shared record (an image holds
    /// it) unless no image can hold it (`unheld`).
    pub reclaim_bytes: u64,
}

/// A complete build cache plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CachePlan {
    /// One decision per record, in record order.
    pub decisions: Vec<CacheDecision>,
    /// Plan order as indexes into `decisions`: deletions first (in execution order), then
    /// kept records, then untouched ones; ties by last use and ID.
    pub order: Vec<usize>,
    pub deletions: Vec<CacheDeletion>,
    pub reclaimable_bytes: u64,
    /// Bytes of every record listed.
    pub total_bytes: u64,
}

impl CachePlan {
    /// The decisions in plan order.
    pub fn in_order(&self) -> impl Iterator<Item = &CacheDecision> {
        self.order.iter().map(|&i| &self.decisions[i])
    }
}

/// Plan the build cache; `images` is how many listed images can hold a shared record (those
/// without a parent: the classic builder's step images have one). Deterministic: the same inputs give the same plan.
#[must_use]
pub fn plan(
    records: &[CacheRecord],
    rules: &[CacheRule],
    images: usize,
    now: DateTime<Utc>,
) -> CachePlan {
    let names: Vec<Arc<str>> = rules.iter().map(|r| Arc::from(r.name.as_str())).collect();
    let graph = Links::new(records);
    let unheld = unheld(records, &graph.parents, images);
    let mut rule_of = Vec::with_capacity(records.len());
    let mut reasons = Vec::with_capacity(records.len());
    for (r, &unheld) in records.iter().zip(&unheld) {
        let shared = r.shared && !unheld;
        let k = rules.iter().position(|rule| rule.selects(&r.kind, shared));
        rule_of.push(k);
        reasons.push(match k {
            _ if r.in_use => CacheReason::InUse,
            Some(k) => match first_reason(r, &rules[k], &names[k], now) {
                CacheReason::UnusedFor {
                    rule,
                    idle_secs,
                    unused_for_secs,
                } if unheld => CacheReason::UnheldShared {
                    rule,
                    idle_secs,
                    unused_for_secs,
                    images,
                },
                reason => reason,
            },
            None => match rules.iter().position(|rule| rule.selects_type(&r.kind)) {
                Some(k) if shared => CacheReason::Shared {
                    rule: Arc::clone(&names[k]),
                },
                _ => CacheReason::NoRuleMatches,
            },
        });
    }
    for (k, rule) in rules.iter().enumerate() {
        if let Some(limit) = rule.keep_storage {
            keep_storage(records, &rule_of, k, &names[k], limit, &mut reasons);
        }
    }
    keep_parents_of_kept(&graph, records, &mut reasons);
    assemble(records, &graph, &rule_of, &names, reasons, &unheld)
}

/// Idle time at `now` (zero when the record was used "in the future").
fn idle(r: &CacheRecord, now: DateTime<Utc>) -> Option<Duration> {
    r.last_touched()
        .map(|t| (now - t).to_std().unwrap_or(Duration::ZERO))
}

/// The reason of a selected record that is not in use, before `keep_storage`.
fn first_reason(
    r: &CacheRecord,
    rule: &CacheRule,
    name: &Arc<str>,
    now: DateTime<Utc>,
) -> CacheReason {
    let rule_name = Arc::clone(name);
    let Some(idle) = idle(r, now) else {
        return CacheReason::UnknownLastUse { rule: rule_name };
    };
    match rule.unused_for {
        Some(limit) if idle >= limit => CacheReason::UnusedFor {
            rule: rule_name,
            idle_secs: idle.as_secs(),
            unused_for_secs: limit.as_secs(),
        },
        Some(limit) => CacheReason::UsedRecently {
            rule: rule_name,
            idle_secs: idle.as_secs(),
            unused_for_secs: limit.as_secs(),
        },
        // Validation guarantees keep_storage when unused_for is absent; the totals come later.
        None => CacheReason::WithinKeepStorage {
            rule: rule_name,
            total_bytes: 0,
            keep_storage: rule.keep_storage.unwrap_or(0),
        },
    }
}

/// Delete the least recently used records of rule `k` until its records total at most
/// `limit` (in-use records count but stay); the rest say how much the rule holds.
fn keep_storage(
    records: &[CacheRecord],
    rule_of: &[Option<usize>],
    k: usize,
    name: &Arc<str>,
    limit: u64,
    reasons: &mut [CacheReason],
) {
    let members: Vec<usize> = (0..records.len())
        .filter(|&i| rule_of[i] == Some(k))
        .collect();
    let mut total: u64 = (members.iter())
        .filter(|&&i| reasons[i].action() != Action::Delete)
        .map(|&i| records[i].size)
        .sum();
    let mut lru: Vec<usize> = (members.iter().copied())
        .filter(|&i| {
            matches!(
                reasons[i],
                CacheReason::UsedRecently { .. } | CacheReason::WithinKeepStorage { .. }
            )
        })
        .collect();
    lru.sort_by(|&a, &b| {
        (records[a].last_touched().cmp(&records[b].last_touched()))
            .then_with(|| records[a].id.cmp(&records[b].id))
    });
    for i in lru {
        if total <= limit {
            break;
        }
        reasons[i] = CacheReason::OverKeepStorage {
            rule: Arc::clone(name),
            total_bytes: total,
            keep_storage: limit,
        };
        total -= records[i].size;
    }
    for &i in &members {
        if let CacheReason::WithinKeepStorage { total_bytes, .. } = &mut reasons[i] {
            *total_bytes = total;
        }
    }
}

/// Parent links resolved to indexes. Parents the list does not hold are ignored.
struct Links {
    parents: Vec<Vec<usize>>,
}

impl Links {
    fn new(records: &[CacheRecord]) -> Self {
        let index: HashMap<&str, usize> = (records.iter().enumerate())
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let parents = (records.iter())
            .map(|r| {
                (r.parents.iter())
                    .filter_map(|p| index.get(p.as_str()).copied())
                    .collect()
            })
            .collect();
        Self { parents }
    }
}

/// A record planned for deletion that a staying record builds on is kept, up the chains.
fn keep_parents_of_kept(graph: &Links, records: &[CacheRecord], reasons: &mut [CacheReason]) {
    let mut stack: Vec<usize> = (0..records.len())
        .filter(|&i| reasons[i].action() != Action::Delete)
        .collect();
    // Each record is pushed once when it stays and once more at most when it is turned.
    while let Some(child) = stack.pop() {
        for &p in &graph.parents[child] {
            if reasons[p].action() == Action::Delete {
                reasons[p] = CacheReason::ParentOfKept {
                    child: records[child].short_id().to_owned(),
                };
                stack.push(p);
            }
        }
    }
}

/// Waves (children before parents), the plan order and the deletions.
fn assemble(
    records: &[CacheRecord],
    graph: &Links,
    rule_of: &[Option<usize>],
    names: &[Arc<str>],
    reasons: Vec<CacheReason>,
    unheld: &[bool],
) -> CachePlan {
    let n = records.len();
    let deleted: Vec<bool> = reasons
        .iter()
        .map(|r| r.action() == Action::Delete)
        .collect();
    let mut wave = vec![0usize; n];
    // Relax parent waves; bounded by n rounds, so a malformed cycle cannot spin forever.
    for _ in 0..n {
        let mut changed = false;
        for c in (0..n).filter(|&c| deleted[c]) {
            for &p in graph.parents[c].iter().filter(|&&p| deleted[p]) {
                if wave[p] <= wave[c] {
                    wave[p] = wave[c] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| {
        let r = &records[i];
        (reasons[i].action(), wave[i], r.last_touched(), &r.id)
    });
    let deletions: Vec<CacheDeletion> = (order.iter())
        .take_while(|&&i| deleted[i])
        .map(|&i| CacheDeletion {
            decision: i,
            wave: wave[i],
            reclaim_bytes: if records[i].shared && !unheld[i] {
                0
            } else {
                records[i].size
            },
        })
        .collect();
    let decisions: Vec<CacheDecision> = (reasons.into_iter().zip(rule_of))
        .enumerate()
        .map(|(i, (reason, k))| CacheDecision {
            record: i,
            action: reason.action(),
            rule: k.map(|k| Arc::clone(&names[k])),
            reason,
        })
        .collect();
    CachePlan {
        reclaimable_bytes: deletions.iter().map(|d| d.reclaim_bytes).sum(),
        total_bytes: crate::inventory::build_cache::total_bytes(records),
        decisions,
        order,
        deletions,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
