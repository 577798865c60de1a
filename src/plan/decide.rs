//! The planning algorithm. Pure: inventory, config and `now` in, plan out.
//!
//! Steps: in-use chains → policy match → protection → grace period → retention per
//! group → parents of kept images → deletion waves (children before parents).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use std::sync::Arc;

use super::graph::Graph;
use super::matching::Compiled;
use super::order::assemble;
use super::par;
use super::{Action, Plan, Reason};
use crate::config::{Config, GroupBy, Policy};
use crate::inventory::{Image, Inventory, short_id};

/// Compute the plan for one pass. Deterministic: the same inputs give the same plan.
#[must_use]
pub fn plan(inventory: &Inventory, config: &Config, now: DateTime<Utc>) -> Plan {
    let threads = par::threads_for(inventory.images.len());
    plan_on_threads(inventory, config, now, threads)
}

/// [`plan`] on up to `threads` threads; the plan is the same for any number of threads.
pub(super) fn plan_on_threads(
    inventory: &Inventory,
    config: &Config,
    now: DateTime<Utc>,
    threads: usize,
) -> Plan {
    let graph = Graph::new(&inventory.images, threads);
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
        now,
    };
    // (policy, group) per image; groups are numbered per part, then merged in part order.
    let mut matched: Vec<(Option<usize>, usize)> = vec![(None, usize::MAX); graph.len()];
    let parts = par::chunks2(&mut reasons, &mut matched, threads, |base, r, m| {
        (base, walk.part(base, r, m))
    });
    let mut groups = Groups::default();
    let mut policy_of: Vec<Option<usize>> = Vec::with_capacity(graph.len());
    let mut group_of: Vec<usize> = Vec::with_capacity(graph.len());
    let ends: Vec<usize> = (parts.iter().skip(1).map(|(base, _)| *base))
        .chain([matched.len()])
        .collect();
    for ((base, part), end) in parts.into_iter().zip(ends) {
        let renumber: Vec<usize> = part.list.into_iter().map(|g| groups.merge(g)).collect();
        for &(p, g) in &matched[base..end] {
            policy_of.push(p);
            group_of.push(if p.is_some() { renumber[g] } else { usize::MAX });
        }
    }
    drop(matched);
    let retention = Retention {
        graph: &graph,
        config,
        names: &names,
        now,
    };
    retention.apply(groups, &policy_of, &group_of, &mut reasons);
    keep_parents_of_kept(&graph, &mut reasons);
    let reasons: Vec<Reason> = reasons
        .into_iter()
        .map(|r| r.unwrap_or(Reason::NoPolicyMatches))
        .collect();
    assemble(&graph, &policy_of, &names, reasons)
}

fn age(image: &Image, now: DateTime<Utc>) -> Duration {
    (now - image.created).to_std().unwrap_or(Duration::ZERO)
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

/// Reasons that keep (or leave untouched) an image before retention is considered.
fn first_keep_reason(
    image: &Image,
    policy: Option<(&Policy, &Arc<str>)>,
    protect_label: Option<usize>,
    config: &Config,
    now: DateTime<Utc>,
) -> Option<Reason> {
    let Some((policy, name)) = policy else {
        return Some(Reason::NoPolicyMatches);
    };
    if let Some(g) = config
        .protect
        .references
        .iter()
        .find(|g| image.references.iter().any(|r| g.matches(r)))
    {
        return Some(Reason::ProtectedReference {
            pattern: g.pattern().to_owned(),
        });
    }
    if let Some(k) = protect_label {
        return Some(Reason::ProtectedLabel {
            predicate: config.protect.labels[k].to_string(),
        });
    }
    let age = age(image, now);
    if age < policy.min_age {
        return Some(Reason::YoungerThanMinAge {
            policy: Arc::clone(name),
            age_secs: age.as_secs(),
            min_age_secs: policy.min_age.as_secs(),
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
        let images = &self.images[base..base + reasons.len()];
        for (j, ((image, reason), m)) in images.iter().zip(reasons).zip(matched).enumerate() {
            self.compiled.values(&image.labels, &mut values);
            let policy = self.compiled.first_match(image, &values);
            if let Some(p) = policy {
                let key = group_key(image, &self.config.policies[p].group_by);
                *m = (policy, groups.add(p, key, base + j));
            }
            if reason.is_none() {
                let p = policy.map(|p| (&self.config.policies[p], &self.names[p]));
                let label = self.compiled.protected_by_label(&values);
                *reason = first_keep_reason(image, p, label, self.config, self.now);
            }
        }
        groups
    }
}

/// The group an image falls in: the repository or the label value (borrowed, no allocation).
type GroupKey<'a> = Option<&'a str>;

/// The images of each (policy, group), in inventory order.
#[derive(Default)]
struct Groups<'a> {
    index: FxHashMap<(usize, GroupKey<'a>), usize>,
    list: Vec<Group<'a>>,
}

struct Group<'a> {
    policy: usize,
    key: GroupKey<'a>,
    members: Vec<usize>,
}

impl<'a> Groups<'a> {
    /// Put image `i` in the group of policy `p` and `key`; returns the group's index.
    fn add(&mut self, p: usize, key: GroupKey<'a>, i: usize) -> usize {
        let list = &mut self.list;
        let g = *self.index.entry((p, key)).or_insert_with(|| {
            list.push(Group {
                policy: p,
                key,
                members: Vec::new(),
            });
            list.len() - 1
        });
        self.list[g].members.push(i);
        g
    }

    /// Append another part's group (members after this one's); returns its index here.
    fn merge(&mut self, group: Group<'a>) -> usize {
        let list = &mut self.list;
        let g = *self
            .index
            .entry((group.policy, group.key))
            .or_insert_with(|| {
                list.push(Group {
                    policy: group.policy,
                    key: group.key,
                    members: Vec::new(),
                });
                list.len() - 1
            });
        self.list[g].members.extend(group.members);
        g
    }
}

fn group_key<'a>(image: &'a Image, group_by: &GroupBy) -> GroupKey<'a> {
    match group_by {
        GroupBy::None => None,
        GroupBy::Repository => image.references.first().map(|r| repository(r)),
        GroupBy::Label(key) => image.labels.get(key).map(String::as_str),
    }
}

/// How a group is named in reasons: `all`, `app`, `<none>`, `label:project=a`.
fn group_name(key: GroupKey<'_>, group_by: &GroupBy) -> String {
    match (group_by, key) {
        (GroupBy::None, _) => "all".to_owned(),
        (GroupBy::Repository, k) => k.unwrap_or("<none>").to_owned(),
        (GroupBy::Label(l), Some(v)) => format!("label:{l}={v}"),
        (GroupBy::Label(l), None) => format!("label:{l} (unset)"),
    }
}

/// `registry:5000/app:1` → `registry:5000/app`.
fn repository(reference: &str) -> &str {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => reference,
    }
}

/// What retention needs besides the per-image tables.
struct Retention<'g, 'a> {
    graph: &'g Graph<'a>,
    config: &'g Config,
    names: &'g [Arc<str>],
    now: DateTime<Utc>,
}

impl Retention<'_, '_> {
    /// Decide every matched image not yet kept: rank each group newest first, then one
    /// walk in inventory order (so that images and reasons are read sequentially), then the
    /// size budgets group by group.
    fn apply(
        &self,
        mut groups: Groups<'_>,
        policy_of: &[Option<usize>],
        group_of: &[usize],
        reasons: &mut [Option<Reason>],
    ) {
        let graph = self.graph;
        let mut rank = vec![0usize; graph.len()];
        for group in &mut groups.list {
            // Newest first; ties broken by ID so the order is total.
            group.members.sort_unstable_by(|&a, &b| {
                (graph.created[b].cmp(&graph.created[a]))
                    .then_with(|| graph.images[a].id.cmp(&graph.images[b].id))
            });
            for (r, &i) in group.members.iter().enumerate() {
                rank[i] = r;
            }
        }
        let group_names: Vec<Arc<str>> = groups
            .list
            .iter()
            .map(|g| Arc::from(group_name(g.key, &self.config.policies[g.policy].group_by)))
            .collect();
        for (i, reason) in reasons.iter_mut().enumerate() {
            if reason.is_some() {
                continue;
            }
            let Some(p) = policy_of[i] else { continue };
            let group = &group_names[group_of[i]];
            *reason = Some(self.decide(p, group, rank[i], &graph.images[i]));
        }
        for (group, name) in groups.list.iter().zip(&group_names) {
            let p = group.policy;
            if let Some(limit) = self.config.policies[p].max_total_size {
                apply_size_budget(graph, &self.names[p], name, &group.members, limit, reasons);
            }
        }
    }

    /// The retention decision for a matched image that nothing keeps, `rank` newest first.
    fn decide(&self, p: usize, group: &Arc<str>, rank: usize, image: &Image) -> Reason {
        let policy = &self.config.policies[p];
        let name = || Arc::clone(&self.names[p]);
        let age = age(image, self.now);
        match (policy.max_age, policy.keep_last) {
            (Some(max), _) if age > max => Reason::OlderThanMaxAge {
                policy: name(),
                age_secs: age.as_secs(),
                max_age_secs: max.as_secs(),
            },
            (_, Some(k)) if rank >= k => Reason::BeyondKeepLast {
                policy: name(),
                keep_last: k,
                group: Arc::clone(group),
            },
            (_, Some(k)) => Reason::AmongNewest {
                policy: name(),
                keep_last: k,
                group: Arc::clone(group),
            },
            _ if policy.is_plain_prune() => Reason::Matched {
                policy: name(),
                age_secs: age.as_secs(),
                min_age_secs: policy.min_age.as_secs(),
            },
            _ => Reason::WithinPolicy { policy: name() },
        }
    }
}

/// Delete the oldest deletable images until the group's remaining bytes fit the budget.
fn apply_size_budget(
    graph: &Graph<'_>,
    policy: &Arc<str>,
    group: &Arc<str>,
    members: &[usize],
    limit: u64,
    reasons: &mut [Option<Reason>],
) {
    let is_delete = |r: &Option<Reason>| r.as_ref().is_some_and(|r| r.action() == Action::Delete);
    let mut total: u64 = members
        .iter()
        .filter(|&&i| !is_delete(&reasons[i]))
        .map(|&i| graph.own_bytes[i])
        .sum();
    for &i in members.iter().rev() {
        if total <= limit {
            break;
        }
        let eligible = matches!(
            reasons[i],
            Some(Reason::AmongNewest { .. } | Reason::WithinPolicy { .. })
        );
        if eligible {
            reasons[i] = Some(Reason::OverSizeBudget {
                policy: Arc::clone(policy),
                group: Arc::clone(group),
                group_bytes: total,
                max_total_size: limit,
            });
            total -= graph.own_bytes[i];
        }
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
