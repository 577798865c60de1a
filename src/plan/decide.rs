//! The planning algorithm. Pure: inventory, config and `now` in, plan out.
//!
//! Steps: in-use chains → policy match → protection → grace period → retention per
//! group → parents of kept images → deletion waves (children before parents).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Action, Decision, Deletion, Plan, Reason};
use crate::config::{Config, GroupBy, Policy};
use crate::inventory::{Image, Inventory, short_id};

/// Compute the plan for one pass. Deterministic: the same inputs give the same plan.
#[must_use]
pub fn plan(inventory: &Inventory, config: &Config, now: DateTime<Utc>) -> Plan {
    let graph = Graph::new(&inventory.images);
    let mut reasons: Vec<Option<Reason>> = vec![None; graph.len()];
    mark_in_use(inventory, &graph, &mut reasons);
    let policy_of: Vec<Option<usize>> = inventory
        .images
        .iter()
        .map(|im| {
            config
                .policies
                .iter()
                .position(|p| p.matcher.matches(&im.references, &im.labels))
        })
        .collect();
    for (i, image) in inventory.images.iter().enumerate() {
        if reasons[i].is_none() {
            reasons[i] = first_keep_reason(
                image,
                policy_of[i].map(|p| &config.policies[p]),
                config,
                now,
            );
        }
    }
    apply_retention(&graph, config, &policy_of, now, &mut reasons);
    keep_parents_of_kept(&graph, &mut reasons);
    let reasons: Vec<Reason> = reasons
        .into_iter()
        .map(|r| r.unwrap_or(Reason::NoPolicyMatches))
        .collect();
    assemble(&graph, &policy_of, config, reasons)
}

/// Images with parent/child links resolved to indexes.
struct Graph<'a> {
    images: &'a [Image],
    index: HashMap<&'a str, usize>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    /// Bytes the image adds on top of its parent (its own layers).
    own_bytes: Vec<u64>,
}

impl<'a> Graph<'a> {
    fn new(images: &'a [Image]) -> Self {
        let index: HashMap<&str, usize> = images
            .iter()
            .enumerate()
            .map(|(i, im)| (im.id.as_str(), i))
            .collect();
        let parent: Vec<Option<usize>> = images
            .iter()
            .map(|im| im.parent_id.as_deref().and_then(|p| index.get(p).copied()))
            .collect();
        let mut children = vec![Vec::new(); images.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        let own_bytes = images
            .iter()
            .zip(&parent)
            .map(|(im, p)| im.size.saturating_sub(p.map_or(0, |p| images[p].size)))
            .collect();
        Self {
            images,
            index,
            parent,
            children,
            own_bytes,
        }
    }

    fn len(&self) -> usize {
        self.images.len()
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// How an image is named in reasons: its first reference, else its short ID.
    fn display(&self, i: usize) -> String {
        let im = &self.images[i];
        im.references
            .first()
            .cloned()
            .unwrap_or_else(|| im.short_id().to_owned())
    }
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
    policy: Option<&Policy>,
    config: &Config,
    now: DateTime<Utc>,
) -> Option<Reason> {
    let Some(policy) = policy else {
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
    if let Some(p) = config
        .protect
        .labels
        .iter()
        .find(|p| p.matches(&image.labels))
    {
        return Some(Reason::ProtectedLabel {
            predicate: p.to_string(),
        });
    }
    let age = age(image, now);
    if age < policy.min_age {
        return Some(Reason::YoungerThanMinAge {
            policy: policy.name.clone(),
            age_secs: age.as_secs(),
            min_age_secs: policy.min_age.as_secs(),
        });
    }
    None
}

/// The group an image falls in under a policy's `group_by`.
fn group_key(image: &Image, group_by: &GroupBy) -> String {
    match group_by {
        GroupBy::None => "all".to_owned(),
        GroupBy::Repository => image
            .references
            .first()
            .map_or_else(|| "<none>".to_owned(), |r| repository(r).to_owned()),
        GroupBy::Label(key) => match image.labels.get(key) {
            Some(v) => format!("label:{key}={v}"),
            None => format!("label:{key} (unset)"),
        },
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
    policy_of: &[Option<usize>],
    now: DateTime<Utc>,
    reasons: &mut [Option<Reason>],
) {
    let mut groups: HashMap<(usize, String), Vec<usize>> = HashMap::new();
    for (i, p) in policy_of.iter().enumerate() {
        if let Some(p) = *p {
            let key = group_key(&graph.images[i], &config.policies[p].group_by);
            groups.entry((p, key)).or_default().push(i);
        }
    }
    for ((p, group), mut members) in groups {
        // Newest first; ties broken by ID so the order is total.
        members.sort_by(|&a, &b| {
            let (a, b) = (&graph.images[a], &graph.images[b]);
            b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id))
        });
        decide_group(graph, &config.policies[p], &group, &members, now, reasons);
    }
}

fn decide_group(
    graph: &Graph<'_>,
    policy: &Policy,
    group: &str,
    members: &[usize],
    now: DateTime<Utc>,
    reasons: &mut [Option<Reason>],
) {
    let name = || policy.name.clone();
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
                group: group.to_owned(),
            },
            (_, Some(k)) => Reason::AmongNewest {
                policy: name(),
                keep_last: k,
                group: group.to_owned(),
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
        apply_size_budget(graph, policy, group, members, limit, reasons);
    }
}

/// Delete the oldest deletable images until the group's remaining bytes fit the budget.
fn apply_size_budget(
    graph: &Graph<'_>,
    policy: &Policy,
    group: &str,
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
                policy: policy.name.clone(),
                group: group.to_owned(),
                group_bytes: total,
                max_total_size: limit,
            });
            total -= graph.own_bytes[i];
        }
    }
}

/// An image planned for deletion whose child stays is kept, and so on up the chain.
fn keep_parents_of_kept(graph: &Graph<'_>, reasons: &mut [Option<Reason>]) {
    let deleted = |r: &Option<Reason>| r.as_ref().is_some_and(|r| r.action() == Action::Delete);
    // By ID, so that which kept child a parent names does not depend on input order.
    let mut by_id: Vec<usize> = (0..graph.len()).collect();
    by_id.sort_by(|&a, &b| graph.images[a].id.cmp(&graph.images[b].id));
    for k in by_id {
        if deleted(&reasons[k]) {
            continue;
        }
        let mut child = k;
        while let Some(j) = graph.parent[child] {
            if !deleted(&reasons[j]) {
                break;
            }
            reasons[j] = Some(Reason::ParentOfKept {
                child: graph.display(child),
            });
            child = j;
        }
    }
}

/// Order decisions (deletions first, in execution order) and compute waves and cascades.
fn assemble(
    graph: &Graph<'_>,
    policy_of: &[Option<usize>],
    config: &Config,
    reasons: Vec<Reason>,
) -> Plan {
    let n = graph.len();
    let in_delete: Vec<bool> = reasons
        .iter()
        .map(|r| r.action() == Action::Delete)
        .collect();
    let wave = waves(graph, &in_delete);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        let (ia, ib) = (&graph.images[a], &graph.images[b]);
        reasons[a]
            .action()
            .cmp(&reasons[b].action())
            .then(wave[a].cmp(&wave[b]))
            .then(ia.created.cmp(&ib.created))
            .then_with(|| ia.id.cmp(&ib.id))
    });
    let mut reasons: Vec<Option<Reason>> = reasons.into_iter().map(Some).collect();
    let mut decisions = Vec::with_capacity(n);
    let mut deletions = Vec::new();
    let mut reclaimable_bytes = 0;
    for (pos, &i) in order.iter().enumerate() {
        let im = &graph.images[i];
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
            image_id: im.id.clone(),
            references: im.references.clone(),
            created: im.created,
            size: im.size,
            action: reason.action(),
            policy: policy_of[i].map(|p| config.policies[p].name.clone()),
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
    for leaf in 0..graph.len() {
        if !in_delete[leaf] || graph.children[leaf].iter().any(|&c| in_delete[c]) {
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
        if !graph.images[p].references.is_empty() {
            return true;
        }
        if !in_delete[p] {
            return false;
        }
        next = graph.parent[p];
    }
    true
}
