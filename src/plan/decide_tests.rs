//! Planner tests: table-driven cases and property tests of the safety invariants.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::config::{self, Config, Dangling, GroupBy, LabelPredicate, Matcher, Policy, RefGlob};
use crate::inventory::{Container, Image, ImageId, Inventory, Labels};
use crate::plan::*;

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
        labels: Labels::new(),
        created: now() - chrono::Duration::seconds(i64::try_from(age_secs).unwrap()),
        last_tagged: None,
        size: 100,
        shared_size: None,
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
        self.labels.insert(k, v);
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
        all_references: false,
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
        unused_for: None,
        order: config::Order::Lru,
        when: config::When::Always,
        parents: config::Parents::Delete,
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
    let inv = Inventory {
        images,
        containers,
        build_cache: None,
    };
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
        image: image.into(),
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
            "keep: matched builder-stages, 1st newest by build or tag time in group label:project=a: within keep_last 2",
        ),
        (
            "a2",
            "keep: matched builder-stages, 2nd newest by build or tag time in group label:project=a: within keep_last 2",
        ),
        (
            "a3",
            "delete: matched builder-stages, 3rd newest by build or tag time in group label:project=a: beyond keep_last 2",
        ),
        (
            "a4",
            "delete: matched builder-stages, 49h old > max_age 24h",
        ),
        (
            "b1",
            "keep: matched builder-stages, 1st newest by build or tag time in group label:project=b: within keep_last 2",
        ),
    ];
    for (img, want) in cases {
        assert_eq!(line(&p, img), want, "image {img}");
    }
}

#[test]
fn keep_last_is_a_floor_that_max_age_does_not_go_below() {
    let mut pol = policy("b", &["stage=builder"]);
    pol.max_age = Some(Duration::from_secs(24 * H));
    pol.keep_last = Some(1);
    let images = vec![builder("old1", 50 * H), builder("old2", 60 * H)];
    let p = run(images, vec![], &cfg(vec![pol]));
    assert_eq!(
        line(&p, "old1"),
        "keep: matched b, 1st newest by build or tag time in group all: within keep_last 1"
    );
    assert_eq!(line(&p, "old2"), "delete: matched b, 60h old > max_age 24h");
}

#[test]
fn equal_times_rank_the_smaller_id_as_newer() {
    let mut pol = policy("b", &["stage=builder"]);
    pol.keep_last = Some(1);
    let images = vec![builder("tie-b", 5 * H), builder("tie-a", 5 * H)];
    let p = run(images, vec![], &cfg(vec![pol]));
    assert_eq!(decision(&p, "tie-a").action, Action::Keep);
    assert_eq!(decision(&p, "tie-b").action, Action::Delete);
}

#[test]
fn ages_that_cannot_be_told_keep_the_image() {
    let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
    let with_created = |short: &str, t: DateTime<Utc>| {
        let mut im = builder(short, 0);
        im.created = t;
        im
    };
    let tagged = |mut im: Image, ago: u64| {
        im.last_tagged = Some(now() - chrono::Duration::seconds(i64::try_from(ago).unwrap()));
        im
    };
    let images = vec![
        with_created("epoch", at("1970-01-01T00:00:00Z")),
        with_created("y1980", at("1980-01-01T00:00:00Z")),
        with_created("future", now() + chrono::Duration::hours(2)),
        with_created("skew", now() + chrono::Duration::seconds(30)),
        tagged(
            with_created("epoch-tagged", at("1970-01-01T00:00:00Z")),
            3 * H,
        ),
        tagged(with_created("epoch-fresh", at("1970-01-01T00:00:00Z")), 600),
        tagged(builder("retagged", 49 * H), 600),
        builder("plain", 3 * H),
    ];
    let p = run(images, vec![], &cfg(vec![policy("b", &["stage=builder"])]));
    for short in ["epoch", "y1980", "future"] {
        let d = decision(&p, short);
        assert_eq!(d.reason.kind(), "unknown_age", "{short}: {}", d.reason);
        assert_eq!(d.action, Action::Keep);
    }
    assert_eq!(
        line(&p, "epoch"),
        "keep: matched b, age unknown: created 1970-01-01T00:00:00Z is not a usable time and it has no tag time"
    );
    assert_eq!(
        line(&p, "skew"),
        "keep: matched b, 0s old: younger than min_age 1h"
    );
    assert_eq!(
        line(&p, "epoch-tagged"),
        "delete: matched b, 3h old, past min_age 1h"
    );
    assert_eq!(
        line(&p, "epoch-fresh"),
        "keep: matched b, 10m old: younger than min_age 1h"
    );
    assert_eq!(
        line(&p, "retagged"),
        "keep: matched b, 10m old: younger than min_age 1h"
    );
    assert_eq!(decision(&p, "plain").action, Action::Delete);
}

#[test]
fn a_reference_glob_policy_keeps_images_with_other_references() {
    let glob = |g: &str| RefGlob::new(g).unwrap();
    let mut pol = policy("ci", &[]);
    pol.matcher.all_images = false;
    pol.matcher.references = vec![glob("ci/*")];
    let images = vec![
        image("only", 5 * H).tag("ci/app:1").tag("ci/app:2"),
        image("shared", 5 * H).tag("ci/app:3").tag("release/app:3"),
    ];
    let p = run(images.clone(), vec![], &cfg(vec![pol.clone()]));
    assert_eq!(decision(&p, "only").action, Action::Delete);
    assert_eq!(
        line(&p, "shared"),
        "keep: matched ci, but also referenced as release/app:3 (set all_references: true to delete such images)"
    );
    pol.all_references = true;
    let p = run(images, vec![], &cfg(vec![pol]));
    assert_eq!(decision(&p, "shared").action, Action::Delete);
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
fn globs_see_every_spelling_of_a_reference() {
    // The bug of issue 13: Podman reports `localhost/keepme/x:1`; `keepme/*` must protect it.
    let mut c = cfg(vec![policy("all", &[])]);
    c.protect.references = vec![
        RefGlob::new("keepme/*").unwrap(),
        RefGlob::new("docker.io/library/alpine:*").unwrap(),
    ];
    let mut by_repo = policy("by-repo", &["group"]);
    by_repo.matcher.references = vec![RefGlob::new("app:*").unwrap()];
    by_repo.keep_last = Some(1);
    by_repo.group_by = GroupBy::Repository;
    c.policies.insert(0, by_repo);
    let images = vec![
        image("a", 5 * H).tag("localhost/keepme/x:1"),
        image("b", 5 * H).tag("keepme/y:1"),
        image("c", 5 * H).tag("alpine:3"),
        image("d", 5 * H).tag("docker.io/library/alpine:3.20"),
        image("e", 5 * H).tag("localhost/other/z:1"),
        image("f", 6 * H).tag("localhost/app:1").label("group", ""),
        image("g", 5 * H).tag("app:2").label("group", ""),
    ];
    let p = run(images, vec![], &c);
    for short in ["a", "b"] {
        assert_eq!(line(&p, short), "keep: protected by reference keepme/*");
    }
    for short in ["c", "d"] {
        let want = "keep: protected by reference docker.io/library/alpine:*";
        assert_eq!(line(&p, short), want);
    }
    assert_eq!(decision(&p, "e").action, Action::Delete);
    // One familiar repository `app` for Podman's `localhost/app` and Docker's `app`.
    let f = decision(&p, "f");
    assert_eq!(f.policy.as_deref(), Some("by-repo"));
    assert!(
        matches!(&f.reason, Reason::BeyondKeepLast { group, .. } if &**group == "app"),
        "{f:?}"
    );
    assert!(matches!(
        decision(&p, "g").reason,
        Reason::AmongNewest { .. }
    ));
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
fn chains_delete_children_first_and_count_no_byte_twice() {
    let images = vec![
        builder("l1", 5 * H).size(100),
        builder("l2", 5 * H).parent("l1").size(150),
        builder("l3", 5 * H).parent("l2").size(180),
        image("base", 9 * H).tag("base:1").size(10),
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
    assert_eq!(line(&p, "base"), "untouched: no policy matches");
    assert_eq!(p.reclaimable_bytes, 180 + 50);
    let waves: Vec<usize> = p.deletions.iter().map(|d| d.wave).collect();
    assert!(waves.windows(2).all(|w| w[0] <= w[1]), "{waves:?}");
}

/// A classic build's final stage: `base:1` ← three untagged step images ← the tagged image.
/// `n` numbers the build; its step images are `s{n}a`, `s{n}b`, `s{n}c`.
fn classic_build(n: u32, age: u64) -> Vec<Image> {
    let s = |k: &str| format!("s{n}{k}");
    vec![
        image(&s("a"), age).parent("base").size(200),
        image(&s("b"), age).parent(&s("a")).size(300),
        image(&s("c"), age).parent(&s("b")).size(310),
        image(&format!("app{n}"), age)
            .parent(&s("c"))
            .tag(&format!("soak/app:{n}"))
            .size(320),
    ]
}

fn app_policy(keep_last: usize) -> Policy {
    let mut p = policy("apps", &[]);
    p.matcher.all_images = false;
    p.matcher.references = vec![RefGlob::new("soak/app:*").unwrap()];
    p.keep_last = Some(keep_last);
    p.min_age = Duration::from_secs(60);
    p
}

#[test]
fn untagged_parents_go_with_the_image_a_policy_deletes() {
    let mut images = vec![image("base", 9 * H).tag("base:1").size(100)];
    images.extend(classic_build(1, 3 * H));
    images.extend(classic_build(2, 2 * H));
    let p = run(images.clone(), vec![], &cfg(vec![app_policy(1)]));
    assert_eq!(
        line(&p, "app1"),
        "delete: matched apps, 2nd newest by build or tag time in group all: beyond keep_last 1"
    );
    assert_eq!(
        line(&p, "s1c"),
        "delete: parent of deleted image soak/app:1 (apps, parents: delete)"
    );
    let s1c = id("s1c").short();
    assert_eq!(
        line(&p, "s1b"),
        format!("delete: parent of deleted image {s1c} (apps, parents: delete)")
    );
    let d = decision(&p, "s1a");
    assert_eq!(
        (d.action, d.reason.kind(), d.policy.as_deref()),
        (Action::Delete, "parent_of_deleted", Some("apps"))
    );
    // Children before parents, each by its own deletion.
    let wave = |s: &str| {
        let i = position(&p, s);
        p.deletions.iter().find(|d| d.decision == i).map(|d| d.wave)
    };
    let waves: Vec<_> = ["app1", "s1c", "s1b", "s1a"].map(wave).into();
    assert_eq!(waves, [Some(0), Some(1), Some(2), Some(3)]);
    // The kept build and what it needs, and the tagged base, stay.
    assert_eq!(decision(&p, "app2").action, Action::Keep);
    for kept in ["s2c", "s2b", "s2a"] {
        assert_eq!(line(&p, kept), "untouched: no policy matches", "{kept}");
    }
    assert_eq!(line(&p, "base"), "untouched: no policy matches");
    assert_eq!(p.reclaimable_bytes, 10 + 10 + 100 + 100);
    // `parents: keep` leaves the chain, as before.
    let mut keep = app_policy(1);
    keep.parents = config::Parents::Keep;
    let p = run(images, vec![], &cfg(vec![keep]));
    assert_eq!(decision(&p, "app1").action, Action::Delete);
    for left in ["s1c", "s1b", "s1a"] {
        assert_eq!(line(&p, left), "untouched: no policy matches", "{left}");
    }
}

#[test]
fn an_untagged_parent_stays_when_anything_else_needs_it() {
    // Chains `x{k}` ← `app{k}` (deleted by `apps`) whose parent something else needs.
    let old = 3 * H;
    let chain = |k: &str, parent: Image| {
        vec![
            parent,
            image(&format!("app{k}"), old)
                .parent(&format!("x{k}"))
                .tag(&format!("soak/app:{k}")),
        ]
    };
    let mut images = vec![];
    // Another child that stays (an untagged image no policy deletes).
    images.extend(chain("1", image("x1", old)));
    images.push(image("kid", old).parent("x1"));
    // A tag, a digest, a protecting label.
    images.extend(chain("2", image("x2", old).tag("keep:2")));
    let mut x3 = image("x3", old);
    x3.digests.push("keep@sha256:03".into());
    images.extend(chain("3", x3));
    images.extend(chain(
        "4",
        image("x4", old).label("stagesweep.keep", "true"),
    ));
    // A policy matches it and keeps it.
    images.extend(chain("5", builder("x5", 10 * 60)));
    // A container uses it.
    images.extend(chain("6", image("x6", old)));
    // Its other child is deleted by a policy that keeps parents.
    images.extend(chain("7", image("x7", old)));
    images.push(image("tool", old).parent("x7").tag("tools/t:1"));
    // Nothing else needs it: it goes.
    images.extend(chain("8", image("x8", old)));
    let mut apps = app_policy(1);
    apps.keep_last = None;
    let mut tools = policy("tools", &[]);
    tools.matcher.all_images = false;
    tools.matcher.references = vec![RefGlob::new("tools/*").unwrap()];
    tools.parents = config::Parents::Keep;
    let mut c = cfg(vec![apps, tools, policy("builders", &["stage=builder"])]);
    c.protect.labels = vec![LabelPredicate::parse("stagesweep.keep=true").unwrap()];
    let p = run(images, vec![container("c6", "x6", "exited")], &c);
    for k in 1..=8 {
        let app = format!("app{k}");
        assert_eq!(
            decision(&p, &app).action,
            Action::Delete,
            "{}",
            line(&p, &app)
        );
    }
    assert_eq!(decision(&p, "tool").action, Action::Delete);
    let kinds: Vec<&str> = (1..=8)
        .map(|k| decision(&p, &format!("x{k}")).reason.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "no_policy_matches",
            "no_policy_matches",
            "no_policy_matches",
            "no_policy_matches",
            "younger_than_min_age",
            "in_use",
            "no_policy_matches",
            "parent_of_deleted",
        ]
    );
}

#[test]
fn keep_last_keeps_the_newest_builds_and_in_use_images_take_no_place() {
    // The soak's case: build 1 still runs in a container; builds 117–120 are newer.
    let mut images = vec![image("base", 99 * H).tag("base:1")];
    images.extend(classic_build(1, 50 * H));
    for (n, age) in [(117, 4 * 60), (118, 3 * 60), (119, 2 * 60), (120, 90)] {
        images.extend(classic_build(n, age));
    }
    let p = run(
        images,
        vec![container("run1", "app1", "running")],
        &cfg(vec![app_policy(3)]),
    );
    assert_eq!(
        line(&p, "app1"),
        "keep: used by container run100000000 (running)"
    );
    for (n, rank) in [(120, "1st"), (119, "2nd"), (118, "3rd")] {
        assert_eq!(
            line(&p, &format!("app{n}")),
            format!(
                "keep: matched apps, {rank} newest by build or tag time in group all: within keep_last 3"
            )
        );
    }
    assert_eq!(
        line(&p, "app117"),
        "delete: matched apps, 4th newest by build or tag time in group all: beyond keep_last 3"
    );
    // The running build's chain stays; the deleted build's chain goes with it.
    assert_eq!(decision(&p, "s1c").reason.kind(), "parent_of_in_use");
    assert_eq!(decision(&p, "s117a").reason.kind(), "parent_of_deleted");
    assert_eq!(decision(&p, "s118a").action, Action::Untouched);
    // A protected image takes no place either.
    let mut c = cfg(vec![app_policy(1)]);
    c.protect.labels = vec![LabelPredicate::parse("pin").unwrap()];
    let images = vec![
        image("pinned", H).tag("soak/app:9").label("pin", ""),
        image("new", 2 * H).tag("soak/app:8"),
        image("old", 3 * H).tag("soak/app:7"),
    ];
    let p = run(images, vec![], &c);
    assert_eq!(line(&p, "pinned"), "keep: protected by label pin");
    assert_eq!(decision(&p, "new").action, Action::Keep);
    assert_eq!(decision(&p, "old").action, Action::Delete);
}

#[test]
fn images_younger_than_min_age_are_among_the_newest() {
    // Four builds younger than min_age and an old one: keep_last 3 keeps the young ones (by
    // min_age) and not one more; the old one goes.
    let mut pol = app_policy(3);
    pol.min_age = Duration::from_secs(H);
    let images = vec![
        image("y1", 60).tag("soak/app:5"),
        image("y2", 120).tag("soak/app:4"),
        image("y3", 180).tag("soak/app:3"),
        image("y4", 240).tag("soak/app:2"),
        image("old", 5 * H).tag("soak/app:1"),
    ];
    let p = run(images, vec![], &cfg(vec![pol]));
    for y in ["y1", "y2", "y3", "y4"] {
        assert_eq!(decision(&p, y).reason.kind(), "younger_than_min_age");
    }
    assert_eq!(
        line(&p, "old"),
        "delete: matched apps, 5th newest by build or tag time in group all: beyond keep_last 3"
    );
}

/// A hostile listing with parent cycles (a pass rejects it before planning; `plan()` itself
/// must still terminate): every image gets a decision, waves are finite, in-use chains hold.
#[test]
fn parent_cycles_cannot_make_the_planner_loop() {
    let images = vec![
        builder("leaf", 5 * H).parent("a"),
        builder("a", 5 * H).parent("b"),
        builder("b", 5 * H).parent("a"),
        builder("self", 5 * H).parent("self"),
        builder("u1", 5 * H).parent("u2"),
        builder("u2", 5 * H).parent("u1"),
    ];
    let used = vec![container("c1", "u1", "running")];
    let p = run(images, used, &cfg(vec![policy("b", &["stage=builder"])]));
    assert_eq!(p.decisions.len(), 6);
    assert!(p.deletions.iter().all(|d| d.wave < 6), "{:?}", p.deletions);
    assert_eq!(decision(&p, "u1").action, Action::Keep);
    assert_eq!(
        decision(&p, "u2").action,
        Action::Keep,
        "{}",
        line(&p, "u2")
    );
    let inv = Inventory {
        images: p.inv.images.clone(),
        containers: vec![],
        build_cache: None,
    };
    let err = inv.check_parents().expect_err("cycles are rejected");
    assert_eq!(err.cycles.len(), 3, "{err}");
    assert!(err.to_string().contains("nothing was deleted"), "{err}");
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
                        im.labels.insert(LABELS[l].0, LABELS[l].1);
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
            Inventory {
                images,
                containers,
                build_cache: None,
            }
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
        any::<bool>(),
    )
        .prop_map(
            move |(preds, min_age, max_age, keep_last, group, size, keep_parents)| {
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
                if keep_parents {
                    p.parents = config::Parents::Keep;
                }
                p
            },
        )
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
        let first_match = |im: &Image| config.policies.iter().find(|pol| oracle::selects(&pol.matcher, &im.references, &im.digests, &im.labels));
        let protected_label = |im: &Image| config.protect.labels.iter().any(|l| oracle::label(l, &im.labels));
        for (i, im) in inv.images.iter().enumerate() {
            if !deleted.contains(&im.id) {
                // A kept image keeps its whole parent chain.
                for a in ancestors(&inv, i) {
                    prop_assert!(!deleted.contains(&inv.images[a].id), "parent of kept image deleted");
                }
                continue;
            }
            let d = p.decisions.iter().find(|d| d.image == i).unwrap();
            prop_assert!(!protected_chain.contains(&i), "in-use image or parent deleted");
            prop_assert!(!protected_label(im));
            let Some(pol) = first_match(im) else {
                // Outside every match: only the untagged parent chain of an image a policy
                // with `parents: delete` deletes, none of whose children stays.
                prop_assert!(matches!(d.reason, Reason::ParentOfDeleted { .. }), "deleted outside every match: {:?}", d.reason);
                prop_assert!(im.references.is_empty() && im.digests.is_empty(), "a tagged parent went along");
                let children: Vec<&Image> = inv.images.iter().filter(|c| c.parent_id == Some(im.id)).collect();
                prop_assert!(!children.is_empty());
                for c in children {
                    prop_assert!(deleted.contains(&c.id), "a parent went while a child stays");
                    let cd = p.decisions.iter().find(|x| inv.images[x.image].id == c.id).unwrap();
                    let releases = match &cd.reason {
                        Reason::ParentOfDeleted { .. } => true,
                        _ => config.policies.iter().any(|pol| Some(pol.name.as_str()) == cd.policy.as_deref() && pol.parents == config::Parents::Delete),
                    };
                    prop_assert!(releases, "a child deleted by a policy that keeps parents released its parent");
                }
                continue;
            };
            prop_assert_eq!(d.policy.as_deref(), Some(pol.name.as_str()), "first match wins");
            prop_assert!(!im.all_references().any(|r| config.protect.references.iter().any(|g| g.matches(r))));
            let age = (now() - im.created).to_std().unwrap();
            prop_assert!(age >= pol.min_age, "younger than min_age deleted");
        }
        // No orphan is left behind: an untagged image no policy matches and nothing protects,
        // all of whose children are deleted by `parents: delete` (or go the same way), goes.
        for (i, im) in inv.images.iter().enumerate().rev() {
            let children: Vec<&Image> = inv.images.iter().filter(|c| c.parent_id == Some(im.id)).collect();
            let orphan = !children.is_empty()
                && first_match(im).is_none()
                && im.references.is_empty() && im.digests.is_empty()
                && !protected_label(im)
                && !protected_chain.contains(&i)
                && children.iter().all(|c| {
                    let cd = p.decisions.iter().find(|x| inv.images[x.image].id == c.id).unwrap();
                    cd.action == Action::Delete && (matches!(cd.reason, Reason::ParentOfDeleted { .. })
                        || config.policies.iter().any(|pol| Some(pol.name.as_str()) == cd.policy.as_deref() && pol.parents == config::Parents::Delete))
                });
            prop_assert_eq!(orphan, deleted.contains(&im.id) && first_match(im).is_none(), "orphan left behind or unmatched image deleted: {:?}", im.id);
        }
        // Waves put children before parents.
        for del in &p.deletions {
            let i = p.decisions[del.decision].image;
            for a in ancestors(&inv, i) {
                if let Some(pd) = p.deletions.iter().find(|x| p.decisions[x.decision].image == a) {
                    prop_assert!(pd.wave > del.wave);
                }
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
        let mut in_use_chain: HashSet<ImageId> = HashSet::new();
        for c in &inv.containers {
            let i = inv.images.iter().position(|im| im.id == c.image_id).unwrap();
            in_use_chain.insert(c.image_id);
            in_use_chain.extend(ancestors(&inv, i).into_iter().map(|a| inv.images[a].id));
        }
        // Images in use keep their place out of the count: the N newest of the others stay.
        let mut groups: BTreeMap<Option<String>, Vec<&Image>> = BTreeMap::new();
        for im in inv.images.iter().filter(|im| oracle::selects(&pol.matcher, &im.references, &im.digests, &im.labels)) {
            let d = p.decisions.iter().find(|d| inv.images[d.image].id == im.id).unwrap();
            if in_use_chain.contains(&im.id) {
                prop_assert!(matches!(d.reason, Reason::InUse { .. } | Reason::ParentOfInUse { .. }), "{:?}", d.reason);
                continue;
            }
            groups.entry(im.labels.get("project").map(str::to_owned)).or_default().push(im);
        }
        for members in groups.values_mut() {
            members.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
            for (rank, im) in members.iter().enumerate() {
                let d = p.decisions.iter().find(|d| inv.images[d.image].id == im.id).unwrap();
                if rank < keep {
                    prop_assert!(matches!(&d.reason, Reason::AmongNewest { rank: r, .. } if *r == rank + 1), "{:?}", d.reason);
                } else if matches!(d.reason, Reason::BeyondKeepLast { .. }) {
                    prop_assert_eq!(d.action, Action::Delete);
                } else {
                    // Beyond keep_last and not deleted: only when a kept child needs it.
                    prop_assert!(matches!(d.reason, Reason::ParentOfKept { .. }), "{:?}", d.reason);
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
            let dels: Vec<_> = p.deletions.iter().map(|d| (inv.images[d.decision].id, d.wave, d.reclaim_bytes)).collect();
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
        prop_assert_eq!(decide::plan_on_threads(&inv, &config, &Usage::default(), now(), threads), plan(&inv, &config, now()));
    }
}

trait SharedExt {
    fn shared(self, s: u64) -> Self;
}

impl SharedExt for Image {
    fn shared(mut self, s: u64) -> Self {
        self.shared_size = Some(s);
        self
    }
}

#[test]
fn parentless_images_on_one_base_count_the_base_once_not_per_image() {
    // A 1000-byte base image and two BuildKit-style images on it (no ParentId), 10 and 20
    // bytes of their own: the engine says each shares 1000 bytes with the others.
    let images = vec![
        image("base", 9 * H).tag("base:1").size(1000).shared(1000),
        builder("x", 5 * H).size(1010).shared(1000),
        builder("y", 5 * H).size(1020).shared(1000),
    ];
    let p = run(images, vec![], &cfg(vec![policy("b", &["stage=builder"])]));
    assert!(p.sharing_data);
    let bytes: Vec<u64> = p.deletions.iter().map(|d| d.reclaim_bytes).collect();
    assert_eq!(bytes, [10, 20], "own layers only");
    assert_eq!(
        p.reclaimable_bytes, 30,
        "not 2030: the base stays with base:1"
    );
}

#[test]
fn without_sharing_data_parentless_images_count_their_whole_size() {
    let images = vec![
        builder("x", 5 * H).size(1010),
        builder("y", 5 * H).size(1020),
    ];
    let p = run(images, vec![], &cfg(vec![policy("b", &["stage=builder"])]));
    assert!(!p.sharing_data, "the figure is then an estimate");
    assert_eq!(p.reclaimable_bytes, 2030);
}

#[test]
fn classic_chains_keep_the_parent_difference_with_sharing_data() {
    // l1 <- l2 (leaf). The engine lists only the leaf, which shares nothing with other
    // top-level images; l1's layers are l2's too, counted once in l1.
    let images = vec![
        builder("l1", 5 * H).size(100),
        builder("l2", 5 * H).parent("l1").size(150).shared(0),
        // A tagged parent listed by the engine: all its layers are shared with its child.
        image("t", 5 * H)
            .tag("t:1")
            .label("stage", "builder")
            .size(40)
            .shared(40),
        builder("c", 5 * H).parent("t").size(70).shared(40),
    ];
    let p = run(images, vec![], &cfg(vec![policy("b", &["stage=builder"])]));
    let own = |s: &str| {
        let i = position(&p, s);
        p.deletions
            .iter()
            .find(|d| d.decision == i)
            .map(|d| d.reclaim_bytes)
    };
    assert_eq!(own("l2"), Some(50));
    assert_eq!(own("l1"), Some(100));
    assert_eq!(own("c"), Some(30));
    assert_eq!(
        own("t"),
        Some(40),
        "a parent keeps what it adds: its child holds it too"
    );
    assert_eq!(
        p.reclaimable_bytes, 220,
        "the chains' 220 bytes, each layer once"
    );
}

#[test]
fn a_size_budget_counts_a_shared_base_once() {
    // Three images of 10 own bytes on one 1000-byte base: the group holds 1030 bytes, not
    // 3030. A 1020-byte budget deletes only the oldest one.
    let images = vec![
        builder("a", 9 * H).size(1010).shared(1000),
        builder("b", 8 * H).size(1010).shared(1000),
        builder("c", 7 * H).size(1010).shared(1000),
    ];
    let mut budget = policy("b", &["stage=builder"]);
    budget.max_total_size = Some(1020);
    let p = run(images, vec![], &cfg(vec![budget]));
    assert_eq!(
        line(&p, "a"),
        "delete: matched b, group all totals 1.0 kB > max_total_size 1.0 kB"
    );
    assert_eq!(decision(&p, "b").action, Action::Keep);
    assert_eq!(decision(&p, "c").action, Action::Keep);
    if let Reason::OverSizeBudget { group_bytes, .. } = &decision(&p, "a").reason {
        assert_eq!(*group_bytes, 1030);
    } else {
        panic!("a is deleted by the budget");
    }
}

/// The matching rules written out plainly, as the planner's compiled matching must agree
/// with them (the property tests above check it).
mod oracle {
    use crate::config::{Dangling, LabelPredicate, Matcher};
    use crate::inventory::Labels;

    /// Whether a label predicate holds for these labels.
    pub fn label(p: &LabelPredicate, labels: &Labels) -> bool {
        match p {
            LabelPredicate::Exists(k) => labels.contains_key(k),
            LabelPredicate::Equals(k, v) => labels.get(k) == Some(v.as_str()),
            LabelPredicate::NotEquals(k, v) => labels.get(k) != Some(v.as_str()),
        }
    }

    /// Whether a matcher selects an image with these references, digests and labels.
    pub fn selects(
        m: &Matcher,
        references: &[String],
        digests: &[String],
        labels: &Labels,
    ) -> bool {
        let dangling = references.is_empty() && digests.is_empty();
        let dangling_ok = match m.dangling {
            Dangling::Any => true,
            Dangling::Only => dangling,
            Dangling::Never => !dangling,
        };
        dangling_ok
            && m.labels.iter().all(|p| label(p, labels))
            && (m.references.is_empty()
                || references
                    .iter()
                    .chain(digests)
                    .any(|r| m.selects_reference(r)))
    }
}
