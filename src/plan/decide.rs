//! The planning algorithm. Pure: inventory, config and `now` in, plan out.
//!
//! Steps: in-use chains → policy match → protection → grace period → retention per
//! group → disk pressure → parents of kept images → untagged parents of deleted images →
//! deletion waves (children before parents).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::age::since_age;
use super::decision::Plan;
use super::graph::Graph;
use super::matching::{Compiled, Names};
use super::order::assemble;
use super::par;
use super::parents::Orphans;
use super::pressure::Eviction;
use super::reason::{Action, Reason};
use super::retention::{Groups, Retention, group_key};
use super::seen::{Origin, Seen, Usage};
use crate::config::{Config, Policy};
use crate::inventory::{Image, Inventory, short_id};

/// Compute the plan for one pass without history or disk figures. Deterministic: the same
/// inputs give the same plan.
#[must_use]
pub fn plan(inventory: &Inventory, config: &Config, now: DateTime<Utc>) -> Plan {
    plan_with(inventory, config, &Usage::default(), now)
}

/// [`plan`] with the history's records and the disk measurement.
#[must_use]
pub fn plan_with(
    inventory: &Inventory,
    config: &Config,
    usage: &Usage,
    now: DateTime<Utc>,
) -> Plan {
    let threads = par::threads_for(inventory.images.len());
    plan_on_threads(inventory, config, usage, now, threads)
}

/// [`plan_with`] on up to `threads` threads; the plan is the same for any number of threads.
pub(super) fn plan_on_threads(
    inventory: &Inventory,
    config: &Config,
    usage: &Usage,
    now: DateTime<Utc>,
    threads: usize,
) -> Plan {
    let graph = Graph::new(&inventory.images, threads);
    let seen = Seen::new(&graph, usage);
    // Shared names: reasons and decisions point at them instead of copying them per image.
    let names: Vec<Arc<str>> = config
        .policies
        .iter()
        .map(|p| Arc::from(p.name.as_str()))
        .collect();
    let mut reasons: Vec<Option<Reason>> = vec![None; graph.len()];
    mark_in_use(inventory, &graph, &mut reasons);
    // One walk over the images, so that each one's labels and references are read while hot:
    // the first matching policy, its group, and the reasons that keep it regardless.
    let walk = Walk {
        images: &inventory.images,
        config,
        names: &names,
        compiled: Compiled::new(config),
        seen: &seen,
        now,
    };
    // (policy, group) per image; groups are numbered per part, then merged in part order.
    let mut matched: Vec<(Option<usize>, usize)> = vec![(None, usize::MAX); graph.len()];
    let parts = par::chunks2(&mut reasons, &mut matched, threads, |base, r, m| {
        (base, walk.part(base, r, m))
    });
    let (groups, mut policy_of, group_of) = Groups::merge_parts(parts, &matched);
    drop(matched);
    let retention = Retention {
        graph: &graph,
        config,
        names: &names,
        seen: &seen,
        now,
    };
    retention.apply(groups, &policy_of, &group_of, &mut reasons);
    let eviction = Eviction {
        graph: &graph,
        config,
        names: &names,
        seen: &seen,
        usage,
        now,
    };
    let evictions = eviction.apply(&policy_of, &mut reasons);
    keep_parents_of_kept(&graph, &mut reasons);
    let orphans = Orphans {
        graph: &graph,
        config,
        names: &names,
        compiled: &walk.compiled,
    };
    orphans.apply(&mut reasons, &mut policy_of);
    drop(seen);
    let reasons: Vec<Reason> = reasons
        .into_iter()
        .map(|r| r.unwrap_or(Reason::NoPolicyMatches))
        .collect();
    let mut plan = assemble(graph, &policy_of, &names, reasons);
    plan.eviction = evictions;
    plan
}

/// Images used by containers, and their whole parent chains.
fn mark_in_use(inventory: &Inventory, graph: &Graph<'_>, reasons: &mut [Option<Reason>]) {
    let mut containers: Vec<_> = inventory.containers.iter().collect();
    containers.sort_by(|a, b| a.id.cmp(&b.id));
    for c in containers {
        let Some(i) = graph.index_of(c.image_id) else {
            continue;
        };
        let container = short_id(&c.id).to_owned();
        if !matches!(reasons[i], Some(Reason::InUse { .. })) {
            reasons[i] = Some(Reason::InUse {
                container: container.clone(),
                state: c.state.clone(),
            });
        }
        let child = graph.display(i);
        let mut next = graph.parent[i];
        while let Some(j) = next {
            if reasons[j].is_some() {
                break; // already marked, and so is its chain
            }
            reasons[j] = Some(Reason::ParentOfInUse {
                child: child.clone(),
                container: container.clone(),
            });
            next = graph.parent[j];
        }
    }
}

/// Which protection holds for an image: the index of the first matching reference glob and
/// of the first label predicate that holds.
struct Protection {
    reference: Option<usize>,
    label: Option<usize>,
}

/// Reasons that keep (or leave untouched) image `i` before retention is considered.
fn first_keep_reason(
    (i, image): (usize, &Image),
    policy: Option<(&Policy, &Arc<str>)>,
    protection: &Protection,
    config: &Config,
    seen: &Seen<'_>,
    now: DateTime<Utc>,
) -> Option<Reason> {
    let Some((policy, name)) = policy else {
        return Some(Reason::NoPolicyMatches);
    };
    if let Some(g) = protection.reference {
        return Some(Reason::ProtectedReference {
            pattern: config.protect.references[g].pattern().to_owned(),
        });
    }
    if let Some(k) = protection.label {
        return Some(Reason::ProtectedLabel {
            predicate: config.protect.labels[k].to_string(),
        });
    }
    if !policy.all_references && !policy.matcher.references.is_empty() {
        let others: Vec<String> = (image.references.iter())
            .filter(|r| !policy.matcher.selects_reference(r))
            .cloned()
            .collect();
        if !others.is_empty() {
            return Some(Reason::OtherReferences {
                policy: Arc::clone(name),
                references: others,
            });
        }
    }
    let Some((since, origin)) = seen.effective(i, image, now) else {
        return Some(Reason::UnknownAge {
            policy: Arc::clone(name),
            created: image
                .created
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
    };
    let age = since_age(since, now);
    if age < policy.min_age {
        return Some(match origin {
            Origin::FirstSeen(by) => Reason::ArrivedRecently {
                policy: Arc::clone(name),
                first_seen: since,
                first_seen_by: by,
                age_secs: age.as_secs(),
                min_age_secs: policy.min_age.as_secs(),
            },
            Origin::Created => Reason::YoungerThanMinAge {
                policy: Arc::clone(name),
                age_secs: age.as_secs(),
                min_age_secs: policy.min_age.as_secs(),
            },
        });
    }
    None
}

/// The walk over the images: for each, the first matching policy, its group, and the reason
/// that keeps it regardless of retention. Read-only; runs on several threads.
struct Walk<'a> {
    images: &'a [Image],
    config: &'a Config,
    names: &'a [Arc<str>],
    compiled: Compiled<'a>,
    seen: &'a Seen<'a>,
    now: DateTime<Utc>,
}

impl<'a> Walk<'a> {
    /// Walk the images from `base` on: fill `reasons` (where nothing set one) and `matched`
    /// (policy, group number within this part); return this part's groups.
    fn part(
        &self,
        base: usize,
        reasons: &mut [Option<Reason>],
        matched: &mut [(Option<usize>, usize)],
    ) -> Groups<'a> {
        let mut groups = Groups::default();
        let mut values = Vec::new();
        let mut names = Names::default();
        let images = &self.images[base..base + reasons.len()];
        for (j, ((image, reason), m)) in images.iter().zip(reasons).zip(matched).enumerate() {
            self.compiled.values(&image.labels, &mut values);
            self.compiled.names(image, &mut names);
            let policy = self.compiled.first_match(image, &values, &names);
            if let Some(p) = policy {
                let key = group_key(image, &self.config.policies[p].group_by);
                *m = (policy, groups.add(p, key, base + j));
            }
            if reason.is_none() {
                let p = policy.map(|p| (&self.config.policies[p], &self.names[p]));
                let protection = Protection {
                    // Only a matched image needs it (the others stay untouched anyway).
                    reference: policy.and_then(|_| self.compiled.protected_by_reference(&names)),
                    label: self.compiled.protected_by_label(&values),
                };
                let at = (base + j, image);
                *reason = first_keep_reason(at, p, &protection, self.config, self.seen, self.now);
            }
        }
        groups
    }
}

/// An image planned for deletion whose child stays is kept, and so on up the chain.
/// The kept child a parent names is its smallest by ID, whatever the input order.
fn keep_parents_of_kept(graph: &Graph<'_>, reasons: &mut [Option<Reason>]) {
    let candidate: Vec<bool> = reasons
        .iter()
        .map(|r| r.as_ref().is_some_and(|r| r.action() == Action::Delete))
        .collect();
    let mut forced = vec![false; graph.len()];
    for k in 0..graph.len() {
        if candidate[k] {
            continue;
        }
        let mut next = graph.parent[k];
        while let Some(j) = next {
            if !candidate[j] || forced[j] {
                break; // stays anyway, or its chain is already marked
            }
            forced[j] = true;
            next = graph.parent[j];
        }
    }
    // For each forced parent, its staying child with the smallest ID.
    let mut named: Vec<Option<usize>> = vec![None; graph.len()];
    for (c, p) in graph.parent.iter().enumerate() {
        let Some(p) = *p else { continue };
        if !forced[p] || (candidate[c] && !forced[c]) {
            continue;
        }
        let smaller = named[p].is_none_or(|b| graph.images[c].id < graph.images[b].id);
        if smaller {
            named[p] = Some(c);
        }
    }
    for (j, child) in named.into_iter().enumerate() {
        if let Some(child) = child {
            reasons[j] = Some(Reason::ParentOfKept {
                child: graph.display(child),
            });
        }
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
