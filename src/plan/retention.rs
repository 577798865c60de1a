//! Retention: images grouped per (policy, group), ranked newest first, then decided by
//! `max_age`, `keep_last` and `max_total_size`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;

use super::age::{age_base, since_age};
use super::graph::{Graph, time_key};
use super::ranking::{Ranked, Ranking};
use super::reason::{Action, Reason};
use super::seen::Seen;
use crate::config::{Config, GroupBy, Order};
use crate::inventory::Image;
use crate::reference;

/// The group an image falls in: the repository or the label value (borrowed, no allocation).
pub(super) type GroupKey<'a> = Option<&'a str>;

/// The images of each (policy, group), in inventory order.
#[derive(Default)]
pub(super) struct Groups<'a> {
    index: FxHashMap<(usize, GroupKey<'a>), usize>,
    list: Vec<Group<'a>>,
}

struct Group<'a> {
    policy: usize,
    key: GroupKey<'a>,
    members: Vec<usize>,
}

impl<'a> Groups<'a> {
    /// The index of the group of policy `p` and `key`, created empty when new.
    fn slot(&mut self, p: usize, key: GroupKey<'a>) -> usize {
        let list = &mut self.list;
        *self.index.entry((p, key)).or_insert_with(|| {
            list.push(Group {
                policy: p,
                key,
                members: Vec::new(),
            });
            list.len() - 1
        })
    }

    /// Put image `i` in the group of policy `p` and `key`; returns the group's index.
    pub fn add(&mut self, p: usize, key: GroupKey<'a>, i: usize) -> usize {
        let g = self.slot(p, key);
        self.list[g].members.push(i);
        g
    }

    /// Merge the groups the walk's parts found (in part order, so members stay in inventory
    /// order) and renumber each image's group. `parts` holds each part's first image and its
    /// groups; `matched` is (policy, group number within its part) per image. Returns the
    /// groups with each image's policy and group index (`usize::MAX` when no policy matched).
    pub fn merge_parts(
        parts: Vec<(usize, Groups<'a>)>,
        matched: &[(Option<usize>, usize)],
    ) -> (Self, Vec<Option<usize>>, Vec<usize>) {
        let mut groups = Groups::default();
        let mut policy_of = Vec::with_capacity(matched.len());
        let mut group_of = Vec::with_capacity(matched.len());
        let ends: Vec<usize> = (parts.iter().skip(1).map(|(base, _)| *base))
            .chain([matched.len()])
            .collect();
        for ((base, part), end) in parts.into_iter().zip(ends) {
            let renumber: Vec<usize> = (part.list.into_iter())
                .map(|g| {
                    let here = groups.slot(g.policy, g.key);
                    groups.list[here].members.extend(g.members);
                    here
                })
                .collect();
            for &(p, g) in &matched[base..end] {
                policy_of.push(p);
                group_of.push(if p.is_some() { renumber[g] } else { usize::MAX });
            }
        }
        (groups, policy_of, group_of)
    }
}

pub(super) fn group_key<'a>(image: &'a Image, group_by: &GroupBy) -> GroupKey<'a> {
    match group_by {
        GroupBy::None => None,
        GroupBy::Repository => image.references.first().map(|r| reference::repository(r)),
        GroupBy::Label(key) => image.labels.get(key),
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

/// What retention needs besides the per-image tables.
pub(super) struct Retention<'g, 'a> {
    pub graph: &'g Graph<'a>,
    pub config: &'g Config,
    pub names: &'g [Arc<str>],
    pub seen: &'g Seen<'g>,
    pub now: DateTime<Utc>,
}

impl Retention<'_, '_> {
    /// Decide every matched image not yet kept: rank each group for `keep_last` (by build
    /// or tag time) and for the size budget (by the policy's `order`), then one walk in
    /// inventory order (so that images and reasons are read sequentially), then the size
    /// budgets group by group.
    pub fn apply(
        &self,
        mut groups: Groups<'_>,
        policy_of: &[Option<usize>],
        group_of: &[usize],
        reasons: &mut [Option<Reason>],
    ) {
        let graph = self.graph;
        let ranking = Ranking::new(graph, self.seen, self.config, self.now);
        let mut rank = vec![0usize; graph.len()];
        for group in &mut groups.list {
            let policy = &self.config.policies[group.policy];
            if policy.keep_last.is_some() {
                self.rank_newest_builds(&group.members, reasons, &mut rank);
            }
            if policy.max_total_size.is_some() {
                rank_for_budget(&ranking, policy.order, &mut group.members);
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
            *reason = Some(self.decide(p, group, rank[i], i));
        }
        for (group, name) in groups.list.iter().zip(&group_names) {
            let p = group.policy;
            if let Some(limit) = self.config.policies[p].max_total_size {
                let order = self.config.policies[p].order;
                let note = |i: usize| ranking.note(order, i);
                let budget = Budget {
                    policy: &self.names[p],
                    group: name,
                    limit,
                    note: &note,
                };
                budget.apply(graph, &group.members, reasons);
            }
        }
    }

    /// `keep_last`'s ranks (1 = newest) of a group's members: by build or tag time (the
    /// later of `Created` and `LastTagTime`, each when it is a real time: the time ages count
    /// from), ties by ID, the smaller counting as newer. Only the images that retention
    /// decides, or that `min_age` keeps (the newest builds), take a place: an image kept for
    /// another reason (in use, protected, other references, unknown age) is kept anyway and
    /// does not push a newer build out of the N. Those get rank 0.
    fn rank_newest_builds(
        &self,
        members: &[usize],
        reasons: &[Option<Reason>],
        rank: &mut [usize],
    ) {
        let graph = self.graph;
        let mut ranked: Vec<(u128, usize)> = (members.iter().copied())
            .filter(|&i| takes_a_place(reasons[i].as_ref()))
            .map(|i| {
                let at = age_base(&graph.images[i], self.now).map_or(0, time_key);
                (at, i)
            })
            .collect();
        ranked.sort_unstable_by(|a, b| {
            (b.0.cmp(&a.0)).then_with(|| graph.images[a.1].id.cmp(&graph.images[b.1].id))
        });
        for (r, (_, i)) in ranked.into_iter().enumerate() {
            rank[i] = r + 1;
        }
    }

    /// The retention decision for matched image `i` that nothing keeps; `rank` is its
    /// `keep_last` rank (1 = newest). `keep_last` is a floor: the N newest of a group are kept
    /// even past `max_age`.
    fn decide(&self, p: usize, group: &Arc<str>, rank: usize, i: usize) -> Reason {
        let policy = &self.config.policies[p];
        let name = || Arc::clone(&self.names[p]);
        let image = &self.graph.images[i];
        // Images of unknown age were kept before retention; zero never exceeds max_age.
        let age = (self.seen.effective(i, image, self.now))
            .map_or(Duration::ZERO, |(since, _)| since_age(since, self.now));
        let idle = policy
            .unused_for
            .zip(self.seen.last_used(i))
            .map(|(limit, (at, by))| {
                let idle = (self.now - at).to_std().unwrap_or(Duration::ZERO);
                (limit, at, by, idle)
            });
        match (policy.keep_last, policy.max_age) {
            (Some(k), _) if rank <= k => Reason::AmongNewest {
                policy: name(),
                keep_last: k,
                group: Arc::clone(group),
                rank,
            },
            (_, Some(max)) if age > max => Reason::OlderThanMaxAge {
                policy: name(),
                age_secs: age.as_secs(),
                max_age_secs: max.as_secs(),
            },
            _ if let Some((limit, at, by, idle)) = idle
                && idle > limit =>
            {
                Reason::UnusedFor {
                    policy: name(),
                    last_used: at,
                    last_used_by: by,
                    idle_secs: idle.as_secs(),
                    unused_for_secs: limit.as_secs(),
                }
            }
            (Some(k), _) => Reason::BeyondKeepLast {
                policy: name(),
                keep_last: k,
                group: Arc::clone(group),
                rank,
            },
            _ if policy.is_plain_prune() => Reason::Matched {
                policy: name(),
                age_secs: age.as_secs(),
                min_age_secs: policy.min_age.as_secs(),
            },
            _ => match idle {
                Some((limit, at, by, idle)) => Reason::UsedRecently {
                    policy: name(),
                    last_used: at,
                    last_used_by: by,
                    idle_secs: idle.as_secs(),
                    unused_for_secs: limit.as_secs(),
                },
                None => Reason::WithinPolicy { policy: name() },
            },
        }
    }
}

/// Whether an image takes one of the `keep_last` places: retention decides it (no reason
/// yet), or only its youth keeps it (it is one of the newest builds).
fn takes_a_place(reason: Option<&Reason>) -> bool {
    matches!(
        reason,
        None | Some(Reason::YoungerThanMinAge { .. } | Reason::ArrivedRecently { .. })
    )
}

/// Sort a group's members in the order a size budget keeps them, the last evicted first:
/// by build or tag time (`oldest`) or by last use (`lru`, the same as `oldest` for images
/// the history does not know), ties by ID; `lfu` and `size` as [`Ranking`] orders them.
fn rank_for_budget(ranking: &Ranking<'_, '_>, order: Order, members: &mut [usize]) {
    let (graph, seen) = (ranking.graph, ranking.seen);
    let by_id = |a: usize, b: usize| graph.images[a].id.cmp(&graph.images[b].id);
    match order {
        Order::Lfu | Order::Size => {
            ranking.sort(order, members);
            members.reverse();
        }
        Order::Lru => members.sort_unstable_by(|&a, &b| {
            let key = |i: usize| seen.lru_key(i, graph.created[i]);
            key(b).cmp(&key(a)).then_with(|| by_id(a, b))
        }),
        Order::Oldest => members.sort_unstable_by(|&a, &b| {
            (graph.created[b].cmp(&graph.created[a])).then_with(|| by_id(a, b))
        }),
    }
}

/// One group's `max_total_size`: the policy and group as reasons name them, the limit, and
/// the note of the policy's order.
struct Budget<'b> {
    policy: &'b Arc<str>,
    group: &'b Arc<str>,
    limit: u64,
    note: &'b dyn Fn(usize) -> Option<Ranked>,
}

impl Budget<'_> {
    /// Delete the deletable images the order puts first until the group's remaining bytes fit
    /// the budget.
    ///
    /// The group's bytes are its images' own bytes plus, once, the largest share of layers one
    /// of them holds with images outside its chain (a common base, counted once and not once
    /// per image; see `graph::own_bytes`).
    fn apply(&self, graph: &Graph<'_>, members: &[usize], reasons: &mut [Option<Reason>]) {
        let (policy, group, limit) = (self.policy, self.group, self.limit);
        let is_delete =
            |r: &Option<Reason>| r.as_ref().is_some_and(|r| r.action() == Action::Delete);
        let staying = || members.iter().copied().filter(|&i| !is_delete(&reasons[i]));
        let mut own: u64 = staying().map(|i| graph.own_bytes[i]).sum();
        let mut shared: BTreeMap<u64, usize> = BTreeMap::new();
        for i in staying().filter(|&i| graph.shared_bytes[i] > 0) {
            *shared.entry(graph.shared_bytes[i]).or_default() += 1;
        }
        let base = |shared: &BTreeMap<u64, usize>| shared.keys().next_back().copied().unwrap_or(0);
        let mut total = own + base(&shared);
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
                    ranked: (self.note)(i),
                });
                own -= graph.own_bytes[i];
                let s = graph.shared_bytes[i];
                if let Some(n) = shared.get_mut(&s) {
                    *n -= 1;
                    if *n == 0 {
                        shared.remove(&s);
                    }
                }
                total = own + base(&shared);
            }
        }
    }
}
