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
use super::{Action, Plan, Reason};
use crate::config::{Config, GroupBy, Policy};
use crate::inventory::{Image, Inventory, short_id};

/// Compute the plan for one pass. Deterministic: the same inputs give the same plan.
#[must_use]
pub fn plan(inventory: &Inventory, config: &Config, now: DateTime<Utc>) -> Plan {
    let graph = Graph::new(&inventory.images);
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
    let mut policy_of: Vec<Option<usize>> = Vec::with_capacity(graph.len());
    let mut groups: Groups<'_> = FxHashMap::default();
    let compiled = Compiled::new(config);
    let mut values = Vec::new();
    for (i, image) in inventory.images.iter().enumerate() {
        compiled.values(&image.labels, &mut values);
        let p = compiled.first_match(image, &values);
        if let Some(p) = p {
            let key = group_key(image, &config.policies[p].group_by);
            groups.entry((p, key)).or_default().push(i);
        }
        if reasons[i].is_none() {
            let policy = p.map(|p| (&config.policies[p], &names[p]));
            let label = compiled.protected_by_label(&values);
            reasons[i] = first_keep_reason(image, policy, label, config, now);
        }
        policy_of.push(p);
    }
    apply_retention(&graph, config, &names, groups, now, &mut reasons);
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
        let Some(i) = graph.index_of(&c.image_id) else {
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

/// The group an image falls in: the repository or the label value (borrowed, no allocation).
type GroupKey<'a> = Option<&'a str>;

/// The images of each (policy, group), in inventory order.
type Groups<'a> = FxHashMap<(usize, GroupKey<'a>), Vec<usize>>;

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

/// Decide every matched image not yet kept, group by group.
fn apply_retention(
    graph: &Graph<'_>,
    config: &Config,
    names: &[Arc<str>],
    groups: Groups<'_>,
    now: DateTime<Utc>,
    reasons: &mut [Option<Reason>],
) {
    for ((p, key), mut members) in groups {
        let group_by = &config.policies[p].group_by;
        let group: Arc<str> = Arc::from(group_name(key, group_by));
        // Newest first; ties broken by ID so the order is total.
        members.sort_unstable_by(|&a, &b| {
            let (a, b) = (&graph.images[a], &graph.images[b]);
            b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id))
        });
        let policy = (&config.policies[p], &names[p]);
        decide_group(graph, policy, &group, &members, now, reasons);
    }
}

fn decide_group(
    graph: &Graph<'_>,
    (policy, policy_name): (&Policy, &Arc<str>),
    group: &Arc<str>,
    members: &[usize],
    now: DateTime<Utc>,
    reasons: &mut [Option<Reason>],
) {
    let name = || Arc::clone(policy_name);
    for (rank, &i) in members.iter().enumerate() {
        if reasons[i].is_some() {
            continue;
        }
        let age = age(&graph.images[i], now);
        let reason = match (policy.max_age, policy.keep_last) {
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
        };
        reasons[i] = Some(reason);
    }
    if let Some(limit) = policy.max_total_size {
        apply_size_budget(graph, policy_name, group, members, limit, reasons);
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
