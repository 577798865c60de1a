//! Planner tests: table-driven cases and property tests of the safety invariants.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::config::{self, Config, Dangling, GroupBy, LabelPredicate, Matcher, Policy, RefGlob};
use crate::inventory::{Container, Image, ImageId, Inventory};

const H: u64 = 3600;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn image(short: &str, age_secs: u64) -> Image {
    Image {
        id: id(short),
        parent_id: None,
        references: vec![],
        digests: vec![],
        labels: BTreeMap::new(),
        created: now() - chrono::Duration::seconds(i64::try_from(age_secs).unwrap()),
        last_tagged: None,
        size: 100,
    }
}

/// A full ID from a short name: the name's bytes in hex, left-padded with zeros, so that IDs
/// order like the names of equal length.
fn id(short: &str) -> ImageId {
    format!("{:0>64}", hex::encode(short))
        .parse()
        .expect("short test names fit in 32 bytes")
}

trait ImageExt {
    fn label(self, k: &str, v: &str) -> Self;
    fn tag(self, r: &str) -> Self;
    fn parent(self, p: &str) -> Self;
    fn size(self, s: u64) -> Self;
}

impl ImageExt for Image {
    fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }
    fn tag(mut self, r: &str) -> Self {
        self.references.push(r.into());
        self
    }
    fn parent(mut self, p: &str) -> Self {
        self.parent_id = Some(id(p));
        self
    }
    fn size(mut self, s: u64) -> Self {
        self.size = s;
        self
    }
}

fn builder(img: &str, age: u64) -> Image {
    image(img, age).label("stage", "builder")
}

fn policy(name: &str, labels: &[&str]) -> Policy {
    Policy {
        name: name.into(),
        matcher: Matcher {
            labels: labels
                .iter()
                .map(|l| LabelPredicate::parse(l).unwrap())
                .collect(),
            references: vec![],
            dangling: Dangling::Any,
            all_images: labels.is_empty(),
        },
        min_age: Duration::from_secs(H),
        max_age: None,
        keep_last: None,
        group_by: GroupBy::None,
        max_total_size: None,
    }
}

fn cfg(policies: Vec<Policy>) -> Config {
    let mut c = config::embedded_default();
    c.policies = policies;
    c
}

/// A plan with the inventory its decisions index.
struct Planned {
    plan: Plan,
    inv: Inventory,
}

impl std::ops::Deref for Planned {
    type Target = Plan;
    fn deref(&self) -> &Plan {
        &self.plan
    }
}

fn run(images: Vec<Image>, containers: Vec<Container>, config: &Config) -> Planned {
    let inv = Inventory { images, containers };
    Planned {
        plan: plan(&inv, config, now()),
        inv,
    }
}

fn position(p: &Planned, short: &str) -> usize {
    let full = id(short);
    p.decisions
        .iter()
        .position(|d| p.inv.images[d.image].id == full)
        .expect("image in plan")
}

fn decision<'a>(p: &'a Planned, short: &str) -> &'a Decision {
    &p.decisions[position(p, short)]
}

fn line(p: &Planned, short: &str) -> String {
    let d = decision(p, short);
    format!("{}: {}", d.action, d.reason)
}

fn container(cid: &str, image: &str, state: &str) -> Container {
    Container {
        id: format!("{cid:0<64}"),
        image_id: id(image),
        state: state.into(),
    }
}

#[test]
fn plain_policy_deletes_old_matches_only() {
    let p = run(
        vec![
            builder("a", 3 * H),
            builder("b", 10 * 60),
            image("c", 100 * H),
        ],
        vec![],
        &cfg(vec![policy("builder-stages", &["stage=builder"])]),
    );
    assert_eq!(
        line(&p, "a"),
        "delete: matched builder-stages, 3h old, past min_age 1h"
    );
    assert_eq!(
        line(&p, "b"),
        "keep: matched builder-stages, 10m old: younger than min_age 1h"
    );
    assert_eq!(line(&p, "c"), "untouched: no policy matches");
    assert_eq!(p.deletions.len(), 1);
}

#[test]
fn max_age_and_keep_last_per_group() {
    let mut pol = policy("builder-stages", &["stage=builder"]);
    pol.max_age = Some(Duration::from_secs(24 * H));
    pol.keep_last = Some(2);
    pol.group_by = GroupBy::Label("project".into());
    let images = vec![
        builder("a1", 2 * H).label("project", "a"),
        builder("a2", 3 * H).label("project", "a"),
        builder("a3", 4 * H).label("project", "a"),
        builder("a4", 49 * H).label("project", "a"),
        builder("b1", 5 * H).label("project", "b"),
    ];
    let p = run(images, vec![], &cfg(vec![pol]));
    let cases = [
        (
            "a1",
            "keep: matched builder-stages, among the 2 newest in group label:project=a",
        ),
        (
            "a2",
            "keep: matched builder-stages, among the 2 newest in group label:project=a",
        ),
        (
            "a3",
            "delete: matched builder-stages, not among the 2 newest in group label:project=a",
        ),
        (
            "a4",
            "delete: matched builder-stages, 49h old > max_age 24h",
        ),
        (
            "b1",
            "keep: matched builder-stages, among the 2 newest in group label:project=b",
        ),
    ];
    for (img, want) in cases {
        assert_eq!(line(&p, img), want, "image {img}");
    }
}

#[test]
fn in_use_images_and_their_parents_are_kept() {
    let images = vec![
        builder("p", 5 * H),
        builder("c", 4 * H).parent("p"),
        builder("other", 4 * H),
    ];
    let p = run(
        images,
        vec![container("3f2a1c", "c", "exited")],
        &cfg(vec![policy("builder-stages", &["stage=builder"])]),
    );
    assert_eq!(
        line(&p, "c"),
        "keep: used by container 3f2a1c000000 (exited)"
    );
    assert!(
        line(&p, "p").starts_with("keep: parent of "),
        "{}",
        line(&p, "p")
    );
    assert_eq!(decision(&p, "other").action, Action::Delete);
}

#[test]
fn parents_of_kept_images_are_kept() {
    let images = vec![
        builder("p", 5 * H),
        builder("young", 10 * 60).parent("p").tag("app:1"),
    ];
    let p = run(images, vec![], &cfg(vec![policy("b", &["stage=builder"])]));
    assert_eq!(line(&p, "p"), "keep: parent of kept image app:1");
}

#[test]
fn protection_by_reference_and_label() {
    let mut c = cfg(vec![policy("all", &[])]);
    c.protect.references = vec![RefGlob::new("*:latest").unwrap()];
    c.protect.labels = vec![LabelPredicate::parse("stagesweep.keep=true").unwrap()];
    let images = vec![
        image("a", 5 * H).tag("app:latest").tag("app:1"),
        image("b", 5 * H).label("stagesweep.keep", "true"),
        image("c", 5 * H).tag("app:2"),
    ];
    let p = run(images, vec![], &c);
    assert_eq!(line(&p, "a"), "keep: protected by reference *:latest");
    assert_eq!(
        line(&p, "b"),
        "keep: protected by label stagesweep.keep=true"
    );
    assert_eq!(decision(&p, "c").action, Action::Delete);
}

#[test]
fn digests_are_references_and_a_digest_only_image_is_not_dangling() {
    let digest = |im: Image, d: &str| {
        let mut im = im;
        im.digests.push(d.into());
        im
    };
    let mut untagged = policy("untagged", &["stage=builder"]);
    untagged.matcher.dangling = Dangling::Only;
    let mut by_digest = policy("by-digest", &[]);
    by_digest.matcher.all_images = false;
    by_digest.matcher.references = vec![RefGlob::new("app@sha256:*").unwrap()];
    let mut c = cfg(vec![untagged, by_digest, policy("rest", &[])]);
    c.protect.references = vec![RefGlob::new("base@*").unwrap()];
    let images = vec![
        builder("a", 5 * H),
        digest(builder("b", 5 * H), "app@sha256:0b"),
        digest(builder("c", 5 * H), "base@sha256:0c"),
        digest(builder("d", 5 * H).tag("base:1"), "base@sha256:0d"),
    ];
    let p = run(images, vec![], &c);
    assert_eq!(decision(&p, "a").policy.as_deref(), Some("untagged"));
    // Known by digest only: not dangling, selected by a glob on its digest.
    assert_eq!(decision(&p, "b").policy.as_deref(), Some("by-digest"));
    assert_eq!(decision(&p, "b").action, Action::Delete);
    // Protected through its digest, with or without a tag.
    assert_eq!(line(&p, "c"), "keep: protected by reference base@*");
    assert_eq!(line(&p, "d"), "keep: protected by reference base@*");
}

#[test]
fn first_matching_policy_wins() {
    let mut lenient = policy("lenient", &["stage=builder", "project=a"]);
    lenient.min_age = Duration::from_secs(100 * H);
    let strict = policy("strict", &["stage=builder"]);
    let p = run(
        vec![
            builder("a", 5 * H).label("project", "a"),
            builder("b", 5 * H),
        ],
        vec![],
        &cfg(vec![lenient, strict]),
    );
    assert_eq!(decision(&p, "a").policy.as_deref(), Some("lenient"));
    assert_eq!(decision(&p, "a").action, Action::Keep);
    assert_eq!(decision(&p, "b").policy.as_deref(), Some("strict"));
    assert_eq!(decision(&p, "b").action, Action::Delete);
}

#[test]
fn size_budget_deletes_oldest_first() {
    let mut pol = policy("budget", &["stage=builder"]);
    pol.max_total_size = Some(250);
    let images = vec![
        builder("new", 2 * H).size(100),
        builder("mid", 3 * H).size(100),
        builder("old", 4 * H).size(100),
        builder("older", 5 * H).size(100),
    ];
    let p = run(images, vec![], &cfg(vec![pol]));
    assert_eq!(decision(&p, "older").action, Action::Delete);
    assert_eq!(decision(&p, "old").action, Action::Delete);
    assert_eq!(
        line(&p, "old"),
        "delete: matched budget, group all totals 300 B > max_total_size 250 B"
    );
    assert_eq!(decision(&p, "mid").action, Action::Keep);
    assert_eq!(decision(&p, "new").action, Action::Keep);
}

#[test]
fn chains_delete_children_first_with_safe_cascade_and_no_double_count() {
    let images = vec![
        builder("l1", 5 * H).size(100),
        builder("l2", 5 * H).parent("l1").size(150),
        builder("l3", 5 * H).parent("l2").size(180),
        image("base", 9 * H).size(10),
        builder("x", 5 * H).parent("base").size(60),
    ];
    let p = run(images, vec![], &cfg(vec![policy("b", &["stage=builder"])]));
    let by_id = |s: &str| {
        let i = position(&p, s);
        p.deletions
            .iter()
            .find(|d| d.decision == i)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("l3").wave, 0);
    assert_eq!(by_id("l2").wave, 1);
    assert_eq!(by_id("l1").wave, 2);
    assert!(by_id("l3").prune_parents);
    // `base` is untagged and not planned: the daemon must not delete it in cascade.
    assert!(!by_id("x").prune_parents);
    assert_eq!(line(&p, "base"), "untouched: no policy matches");
    assert_eq!(p.reclaimable_bytes, 180 + 50);
    let waves: Vec<usize> = p.deletions.iter().map(|d| d.wave).collect();
    assert!(waves.windows(2).all(|w| w[0] <= w[1]), "{waves:?}");
}

#[test]
fn durations_render_as_written() {
    let cases = [
        (90, "90s"),
        (900, "15m"),
        (3600, "1h"),
        (86_400, "24h"),
        (129_600, "36h"),
        (604_800, "7d"),
    ];
    for (secs, want) in cases {
        assert_eq!(fmt_duration(secs), want);
    }
    assert_eq!(fmt_age(49 * H), "49h");
}

// ---------------------------------------------------------------- properties

const LABELS: [(&str, &str); 4] = [
    ("stage", "builder"),
    ("stage", "final"),
    ("project", "a"),
    ("project", "b"),
];
const TAGS: [&str; 4] = ["app:1", "app:latest", "tool:2", "base/img:3"];
/// Digest references; an image that has only these is not dangling.
const DIGESTS: [&str; 2] = ["app@sha256:01", "base/img@sha256:02"];
const PREDICATES: [&str; 6] = [
    "stage=builder",
    "stage",
    "project=a",
    "project!=b",
    "stage!=final",
    "project",
];

fn arb_inventory() -> impl Strategy<Value = Inventory> {
    let img = (
        prop::option::of(0usize..40),
        prop::collection::vec(0usize..TAGS.len(), 0..3),
        prop::collection::vec(0usize..LABELS.len(), 0..3),
        0u64..(200 * H),
        1u64..1000,
        prop::option::of(0usize..DIGESTS.len()),
    );
    (
        prop::collection::vec(img, 0..40),
        prop::collection::vec((0usize..40, 0usize..3), 0..4),
    )
        .prop_map(|(specs, cs)| {
            let n = specs.len();
            let mut used_tags = HashSet::new();
            let images: Vec<Image> = specs
                .into_iter()
                .enumerate()
                .map(|(i, (parent, tags, labels, age, size, digest))| {
                    let mut im = image(&format!("{i:x}"), age).size(size);
                    // Parents come earlier in the list, so the graph has no cycles.
                    im.parent_id = parent.filter(|p| *p < i).map(|p| id(&format!("{p:x}")));
                    for t in tags {
                        if used_tags.insert(t) {
                            im.references.push(TAGS[t].into());
                        }
                    }
                    for l in labels {
                        im.labels.insert(LABELS[l].0.into(), LABELS[l].1.into());
                    }
                    im.digests.extend(digest.map(|d| DIGESTS[d].to_owned()));
                    im
                })
                .collect();
            let containers = cs
                .into_iter()
                .filter(|(i, _)| *i < n)
                .enumerate()
                .map(|(k, (i, s))| {
                    container(
                        &format!("c{k}"),
                        &format!("{i:x}"),
                        ["running", "exited", "created"][s],
                    )
                })
                .collect();
            Inventory { images, containers }
        })
}

fn arb_policy(k: usize) -> impl Strategy<Value = Policy> {
    (
        prop::collection::vec(0usize..PREDICATES.len(), 0..3),
        0u64..(50 * H),
        prop::option::of(1u64..(150 * H)),
        prop::option::of(1usize..4),
        0usize..3,
        prop::option::of(100u64..2000),
    )
        .prop_map(move |(preds, min_age, max_age, keep_last, group, size)| {
            let preds: Vec<&str> = preds.into_iter().map(|p| PREDICATES[p]).collect();
            let mut p = policy(&format!("p{k}"), &preds);
            p.min_age = Duration::from_secs(min_age);
            p.max_age = max_age.map(|m| Duration::from_secs(m.max(min_age)));
            p.keep_last = keep_last;
            p.group_by = [
                GroupBy::None,
                GroupBy::Repository,
                GroupBy::Label("project".into()),
            ][group]
                .clone();
            p.max_total_size = size;
            p
        })
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        prop::collection::vec(any::<u8>(), 1..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(ps, protect_latest, protect_label)| {
            let pols: Vec<_> = (0..ps.len()).map(arb_policy).collect();
            pols.prop_map(move |policies| {
                let mut c = cfg(policies);
                if protect_latest {
                    c.protect.references = vec![RefGlob::new("*:latest").unwrap()];
                }
                if protect_label {
                    c.protect.labels = vec![LabelPredicate::parse("project=b").unwrap()];
                }
                c
            })
        })
}

fn ancestors(inv: &Inventory, i: usize) -> Vec<usize> {
    let mut out = vec![];
    let mut cur = inv.images[i].parent_id;
    while let Some(p) = cur {
        let Some(j) = inv.images.iter().position(|im| im.id == p) else {
            break;
        };
        out.push(j);
        cur = inv.images[j].parent_id;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn deletions_respect_every_safety_invariant(inv in arb_inventory(), config in arb_config()) {
        let p = plan(&inv, &config, now());
        let deleted: HashSet<ImageId> = p.with_action(Action::Delete).map(|d| inv.images[d.image].id).collect();
        let mut protected_chain: HashSet<usize> = HashSet::new();
        for c in &inv.containers {
            let i = inv.images.iter().position(|im| im.id == c.image_id).unwrap();
            protected_chain.insert(i);
            protected_chain.extend(ancestors(&inv, i));
        }
        for (i, im) in inv.images.iter().enumerate() {
            if !deleted.contains(&im.id) {
                // A kept image keeps its whole parent chain.
                for a in ancestors(&inv, i) {
                    prop_assert!(!deleted.contains(&inv.images[a].id), "parent of kept image deleted");
                }
                continue;
            }
            let first = config.policies.iter().find(|pol| pol.matcher.matches(&im.references, &im.digests, &im.labels));
            let Some(pol) = first else { return Err(TestCaseError::fail("deleted outside every match")) };
            let d = p.decisions.iter().find(|d| d.image == i).unwrap();
            prop_assert_eq!(d.policy.as_deref(), Some(pol.name.as_str()), "first match wins");
            prop_assert!(!protected_chain.contains(&i), "in-use image or parent deleted");
            prop_assert!(!im.all_references().any(|r| config.protect.references.iter().any(|g| g.matches(r))));
            prop_assert!(!config.protect.labels.iter().any(|l| l.matches(&im.labels)));
            let age = (now() - im.created).to_std().unwrap();
            prop_assert!(age >= pol.min_age, "younger than min_age deleted");
        }
        // Waves put children before parents; cascades only reach planned images.
        for del in &p.deletions {
            let d = &p.decisions[del.decision];
            let i = d.image;
            for a in ancestors(&inv, i) {
                let parent = &inv.images[a];
                if let Some(pd) = p.deletions.iter().find(|x| p.decisions[x.decision].image == a) {
                    prop_assert!(pd.wave > del.wave);
                }
                if del.prune_parents && parent.is_dangling() {
                    prop_assert!(deleted.contains(&parent.id), "cascade would reach a kept image");
                }
                if !parent.is_dangling() { break; }
            }
        }
    }

    #[test]
    fn keep_last_keeps_exactly_the_newest(inv in arb_inventory(), keep in 1usize..4) {
        let mut pol = policy("k", &["stage=builder"]);
        pol.min_age = Duration::ZERO;
        pol.keep_last = Some(keep);
        pol.group_by = GroupBy::Label("project".into());
        let p = plan(&inv, &cfg(vec![pol.clone()]), now());
        let mut groups: BTreeMap<Option<String>, Vec<&Image>> = BTreeMap::new();
        for im in inv.images.iter().filter(|im| pol.matcher.matches(&im.references, &im.digests, &im.labels)) {
            groups.entry(im.labels.get("project").cloned()).or_default().push(im);
        }
        for members in groups.values_mut() {
            members.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
            for (rank, im) in members.iter().enumerate() {
                let d = p.decisions.iter().find(|d| inv.images[d.image].id == im.id).unwrap();
                if rank < keep {
                    prop_assert_ne!(d.action, Action::Delete);
                } else if matches!(d.reason, Reason::BeyondKeepLast { .. }) {
                    prop_assert_eq!(d.action, Action::Delete);
                } else {
                    // Beyond keep_last and not deleted: only for a keep reason that outranks it.
                    prop_assert!(matches!(d.reason, Reason::InUse { .. } | Reason::ParentOfInUse { .. } | Reason::ParentOfKept { .. }), "{:?}", d.reason);
                }
            }
        }
    }

    #[test]
    fn plan_is_deterministic(inv in arb_inventory(), config in arb_config(), seed in any::<u64>()) {
        let a = plan(&inv, &config, now());
        let mut shuffled = inv.clone();
        let n = shuffled.images.len();
        if n > 1 {
            shuffled.images.rotate_left(usize::try_from(seed % n as u64).unwrap());
            shuffled.containers.reverse();
        }
        let b = plan(&shuffled, &config, now());
        // Decisions index their own inventory: compare them by image ID.
        let by_id = |p: &Plan, inv: &Inventory| {
            let ds: Vec<_> = p.in_order().map(|d| (inv.images[d.image].id, d.action, d.policy.clone(), d.reason.clone())).collect();
            let dels: Vec<_> = p.deletions.iter().map(|d| (inv.images[d.decision].id, d.prune_parents, d.wave, d.reclaim_bytes)).collect();
            (ds, dels, p.reclaimable_bytes)
        };
        prop_assert_eq!(by_id(&a, &inv), by_id(&b, &shuffled));
    }

    #[test]
    fn plan_order_lists_each_image_once_deletions_first(inv in arb_inventory(), config in arb_config()) {
        let p = plan(&inv, &config, now());
        let mut seen = p.order.clone();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..inv.images.len()).collect::<Vec<_>>());
        prop_assert!(p.decisions.iter().enumerate().all(|(i, d)| d.image == i), "decisions in inventory order");
        let actions: Vec<Action> = p.in_order().map(|d| d.action).collect();
        prop_assert!(actions.windows(2).all(|w| w[0] <= w[1]), "deletions, then keeps, then untouched");
        let deletions: Vec<usize> = p.deletions.iter().map(|d| d.decision).collect();
        prop_assert_eq!(&deletions[..], &p.order[..deletions.len()]);
    }

    #[test]
    fn narrow_and_wide_sort_keys_give_the_same_order(inv in arb_inventory(), config in arb_config()) {
        let p = plan(&inv, &config, now());
        let graph = graph::Graph::new(&inv.images, 1);
        let reasons: Vec<Reason> = p.decisions.iter().map(|d| d.reason.clone()).collect();
        let in_delete: Vec<bool> = reasons.iter().map(|r| r.action() == Action::Delete).collect();
        let wave = order::waves(&graph, &in_delete);
        let narrow = order::decision_order_with(&graph, &reasons, &wave, true);
        prop_assert_eq!(&narrow, &order::decision_order_with(&graph, &reasons, &wave, false));
        prop_assert_eq!(&narrow, &p.order);
    }

    #[test]
    fn the_plan_does_not_depend_on_the_number_of_threads(inv in arb_inventory(), config in arb_config(), threads in 2usize..5) {
        prop_assert_eq!(decide::plan_on_threads(&inv, &config, now(), threads), plan(&inv, &config, now()));
    }
}
