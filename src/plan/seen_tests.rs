//! Planner tests for what the history and the disk add: the effective age (`first_seen`),
//! `unused_for`, `order: lru`, and `when: disk_pressure` watermarks — table cases and
//! property tests with plain values.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::config::{self, Config, Measure, Order, Watermarks, When};
use crate::engine::fake::{container, fake_id, image};
use crate::history::{Record, Records, Source};
use crate::inventory::DiskUsage;
use crate::inventory::{Image, ImageId, Inventory};
use crate::plan::graph::time_key;
use crate::plan::*;
use crate::plan::{Reason, plan_with};

const H: i64 = 3600;
const D: i64 = 86_400;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn ago(secs: i64) -> DateTime<Utc> {
    now() - chrono::Duration::seconds(secs)
}

fn builder(seed: &str, age: i64) -> Image {
    image(seed)
        .label("stage", "builder")
        .created(ago(age))
        .build()
}

fn config(extra: &str) -> Config {
    let text = format!(
        "policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    min_age: 1h\n{extra}"
    );
    config::parse_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// A record first seen `first` seconds ago and last used `used` seconds ago, from events.
fn seen(first: i64, used: i64) -> Record {
    Record {
        first_seen: ago(first).timestamp(),
        last_used: ago(used).timestamp(),
        first_seen_by: Source::Event,
        last_used_by: Source::Event,
        uses: 0.0,
        uses_at: 0,
    }
}

fn history(entries: &[(&str, Record)]) -> Records {
    entries.iter().map(|(s, r)| (fake_id(s), *r)).collect()
}

/// What a test gives the planner besides the images: history records by image ID (as the
/// store keeps them) and the disk. [`run`] turns it into a [`Usage`] for its inventory.
#[derive(Clone)]
struct Given {
    history: Records,
    disk: Option<Result<DiskUsage, String>>,
}

fn run(images: Vec<Image>, config: &Config, given: &Given) -> (Inventory, Plan) {
    let inv = Inventory {
        images,
        containers: Vec::new(),
        build_cache: None,
    };
    let plan = plan_with(&inv, config, &given.usage(&inv.images), now());
    (inv, plan)
}

impl Given {
    fn usage(&self, images: &[Image]) -> Usage {
        Usage {
            history: Usage::records_of(images, &self.history),
            disk: self.disk.clone(),
        }
    }
}

fn kind(inv: &Inventory, plan: &Plan, seed: &str) -> &'static str {
    let i = inv
        .images
        .iter()
        .position(|im| im.id == fake_id(seed))
        .expect("in inventory");
    plan.decisions[i].reason.kind()
}

fn reason(inv: &Inventory, plan: &Plan, seed: &str) -> Reason {
    let i = inv
        .images
        .iter()
        .position(|im| im.id == fake_id(seed))
        .expect("in inventory");
    plan.decisions[i].reason.clone()
}

#[test]
fn min_age_counts_from_first_seen_whatever_created_says() {
    let images = vec![
        builder("old-but-new-here", 30 * D),
        builder("epoch", 60 * 365 * D),
        builder("epoch-seen-2h", 60 * 365 * D),
        builder("unknown", 30 * D),
    ];
    let usage = Given {
        history: history(&[
            ("old-but-new-here", seen(10 * 60, 10 * 60)),
            ("epoch", seen(5 * 60, 5 * 60)),
            ("epoch-seen-2h", seen(2 * H, 2 * H)),
        ]),
        disk: None,
    };
    let (inv, plan) = run(images, &config(""), &usage);
    assert_eq!(kind(&inv, &plan, "old-but-new-here"), "arrived_recently");
    assert_eq!(kind(&inv, &plan, "epoch"), "arrived_recently");
    assert_eq!(
        kind(&inv, &plan, "epoch-seen-2h"),
        "matched",
        "1970 + first seen 2h ago"
    );
    assert_eq!(
        kind(&inv, &plan, "unknown"),
        "matched",
        "no record: Created as before"
    );
    let r = reason(&inv, &plan, "old-but-new-here");
    assert_eq!(
        r.to_string(),
        "matched p, first seen 10m ago (2026-06-01 11:50, event): younger than min_age 1h"
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["first_seen"], "2026-06-01T11:50:00Z");
    assert_eq!(json["first_seen_by"], "event");
}

#[test]
fn unused_for_uses_last_use_and_parents_count_their_children() {
    let images = vec![
        builder("idle", 30 * D),
        builder("busy", 30 * D),
        builder("unknown", 30 * D),
        builder("parent", 30 * D),
        image("child")
            .label("stage", "builder")
            .parent("parent")
            .created(ago(29 * D))
            .build(),
    ];
    let usage = Given {
        history: history(&[
            ("idle", seen(20 * D, 8 * D)),
            ("busy", seen(20 * D, D)),
            ("parent", seen(20 * D, 10 * D)),
            ("child", seen(20 * D, 2 * H)),
        ]),
        disk: None,
    };
    let (inv, plan) = run(images, &config("    unused_for: 7d\n"), &usage);
    assert_eq!(kind(&inv, &plan, "idle"), "unused_for");
    assert_eq!(kind(&inv, &plan, "busy"), "used_recently");
    assert_eq!(
        kind(&inv, &plan, "unknown"),
        "within_policy",
        "no history, no verdict"
    );
    assert_eq!(kind(&inv, &plan, "child"), "used_recently");
    assert_eq!(
        kind(&inv, &plan, "parent"),
        "used_recently",
        "its child was used 2h ago"
    );
    assert_eq!(
        reason(&inv, &plan, "idle").to_string(),
        "matched p, last used 8d ago (2026-05-24 12:00, event) > unused_for 7d"
    );
}

#[test]
fn keep_last_ranks_by_build_time_and_budgets_evict_by_order() {
    let images = vec![
        builder("newest-idle", 2 * D),
        builder("oldest-busy", 9 * D),
        builder("middle", 5 * D),
    ];
    let usage = Given {
        history: history(&[
            ("newest-idle", seen(2 * D, 2 * D)),
            ("oldest-busy", seen(9 * D, H)),
            ("middle", seen(5 * D, 3 * D)),
        ]),
        disk: None,
    };
    // keep_last keeps the newest build whatever `order` says: a recent use does not make an
    // old build one of the newest (`unused_for` is the rule for that).
    for order in ["", "    order: oldest\n", "    order: lru\n"] {
        let (inv, plan) = run(
            images.clone(),
            &config(&format!("    keep_last: 1\n{order}")),
            &usage,
        );
        assert_eq!(kind(&inv, &plan, "newest-idle"), "among_newest", "{order}");
        assert_eq!(
            kind(&inv, &plan, "oldest-busy"),
            "beyond_keep_last",
            "{order}"
        );
    }
    // Budgets evict least recently used first with lru (the default)…
    let (inv, plan) = run(
        images.clone(),
        &config("    max_total_size: 2000\n"),
        &usage,
    );
    assert_eq!(
        kind(&inv, &plan, "middle"),
        "over_size_budget",
        "used 3 days ago"
    );
    assert_eq!(kind(&inv, &plan, "newest-idle"), "within_policy");
    assert_eq!(kind(&inv, &plan, "oldest-busy"), "within_policy");
    // … and the oldest build first with oldest.
    let (inv, plan) = run(
        images,
        &config("    max_total_size: 2000\n    order: oldest\n"),
        &usage,
    );
    assert_eq!(kind(&inv, &plan, "oldest-busy"), "over_size_budget");
    assert_eq!(kind(&inv, &plan, "middle"), "within_policy");
}

/// `disk:` with high 85 / low 80 on a 10 000-byte disk with `available` bytes free.
fn disk_usage(available: u64) -> Given {
    Given {
        history: Records::default(),
        disk: Some(Ok(DiskUsage {
            source: "/data".into(),
            capacity_bytes: 10_000,
            available_bytes: available,
            inodes: None,
        })),
    }
}

fn pressure_config(extra: &str) -> Config {
    let c = config(&format!(
        "    when: disk_pressure\n{extra}disk:\n  high: 85\n  low: 80\n"
    ));
    let disk = c.disk.as_ref().expect("a disk section");
    assert_eq!(disk.space, Watermarks { high: 85, low: 80 });
    assert_eq!((disk.measure, disk.inodes), (Measure::Statvfs, None));
    c
}

/// Five 400-byte builder images `u0` (least recently used) … `u4`.
fn lru_five() -> (Vec<Image>, Records) {
    let images = (0..5)
        .map(|k| {
            image(&format!("u{k}"))
                .label("stage", "builder")
                .created(ago(30 * D))
                .size(400)
                .build()
        })
        .collect();
    let records = (0..5)
        .map(|k| (fake_id(&format!("u{k}")), seen(20 * D, (10 - k) * D)))
        .collect();
    (images, records)
}

#[test]
fn over_high_evicts_least_recently_used_first_until_low_and_no_further() {
    let (images, records) = lru_five();
    // 91 % used: 2000 available at 80 % means 1100 bytes to free: three images of 400.
    let usage = Given {
        history: records,
        ..disk_usage(900)
    };
    let (inv, plan) = run(images, &pressure_config(""), &usage);
    let kinds: Vec<_> = (0..5)
        .map(|k| kind(&inv, &plan, &format!("u{k}")))
        .collect();
    assert_eq!(
        kinds,
        [
            "disk_pressure",
            "disk_pressure",
            "disk_pressure",
            "no_disk_pressure",
            "no_disk_pressure"
        ]
    );
    let r = reason(&inv, &plan, "u0");
    assert_eq!(
        r.to_string(),
        "matched p, disk space at 91.0% >= high 85% on /data: evicted least recently used \
         first (last used 2026-05-22 12:00, event) until low 80% (1.1 kB to free)"
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["disk"]["to_free_bytes"], 1100);
    assert_eq!(json["last_used_by"], "event");
    assert!(
        reason(&inv, &plan, "u4")
            .to_string()
            .contains("reaches low 80%")
    );
    // The whole order goes to the pass, which measures between waves: the estimate's three
    // first, then the two it may need when the estimate falls short.
    let order = plan.eviction.as_ref().expect("over high");
    let seeds: Vec<String> = (order.entries.iter())
        .map(|e| inv.images[e.decision].id.to_string())
        .collect();
    let want: Vec<String> = (0..5)
        .map(|k| fake_id(&format!("u{k}")).to_string())
        .collect();
    assert_eq!(seeds, want, "least recently used first");
    assert_eq!(order.estimated, 3);
    assert_eq!(order.figures.to_free_bytes, 1100);
    let otherwise: Vec<&str> = order.entries.iter().map(|e| e.otherwise.kind()).collect();
    assert_eq!(
        otherwise,
        [
            "no_disk_pressure",
            "no_disk_pressure",
            "no_disk_pressure",
            "disk_pressure",
            "disk_pressure"
        ]
    );
    assert!(
        order
            .entries
            .iter()
            .all(|e| e.reclaim_bytes == 400 && !e.follows)
    );
}

#[test]
fn the_eviction_order_puts_a_parent_right_after_its_last_child() {
    // p is the least recently used, but its children c1 (used 9 days ago) and c2 (2 days
    // ago) hold it: it goes right after c2, in c2's unit.
    let images = vec![
        image("p")
            .label("stage", "builder")
            .created(ago(30 * D))
            .size(400)
            .build(),
        image("c1")
            .label("stage", "builder")
            .parent("p")
            .created(ago(30 * D))
            .size(500)
            .build(),
        image("c2")
            .label("stage", "builder")
            .parent("p")
            .created(ago(30 * D))
            .size(500)
            .build(),
        image("x")
            .label("stage", "builder")
            .created(ago(30 * D))
            .size(400)
            .build(),
    ];
    let records = [("p", 20), ("c1", 9), ("x", 5), ("c2", 2)]
        .into_iter()
        .map(|(seed, days)| (fake_id(seed), seen(25 * D, days * D)))
        .collect();
    let usage = Given {
        history: records,
        ..disk_usage(900)
    };
    let (inv, plan) = run(images, &pressure_config(""), &usage);
    let order = plan.eviction.as_ref().expect("over high");
    let got: Vec<(ImageId, bool)> = (order.entries.iter())
        .map(|e| (inv.images[e.decision].id, e.follows))
        .collect();
    let want = [("c1", false), ("x", false), ("c2", false), ("p", true)]
        .map(|(seed, follows)| (fake_id(seed), follows));
    assert_eq!(got, want);
    // 1100 to free: c1 (100 of its own) , x (400), c2 (100), p (400) — all four.
    assert_eq!(order.estimated, 4);
    // Measuring, the pass takes whole units: p never without c2.
    assert_eq!(order.wave_end(2, 1), 4);
}

#[test]
fn over_high_with_nothing_evictable_still_hands_the_pass_an_empty_order() {
    let (images, records) = lru_five();
    let containers = (0..5)
        .map(|k| container(&format!("c{k}"), &format!("u{k}"), "running"))
        .collect();
    let usage = Given {
        history: records,
        ..disk_usage(900)
    };
    let inv = Inventory {
        images,
        containers,
        build_cache: None,
    };
    let plan = plan_with(&inv, &pressure_config(""), &usage.usage(&inv.images), now());
    let order = plan.eviction.as_ref().expect("over high");
    assert!(order.entries.is_empty() && order.estimated == 0);
    assert!(order.figures.over_high());
}

#[test]
fn below_high_or_unmeasured_nothing_is_evicted() {
    let (images, records) = lru_five();
    let calm = Given {
        history: records.clone(),
        ..disk_usage(1600)
    };
    let (inv, plan) = run(images.clone(), &pressure_config(""), &calm);
    assert!(plan.deletions.is_empty());
    assert_eq!(
        plan.eviction, None,
        "below high: nothing for the pass to evict"
    );
    assert_eq!(
        reason(&inv, &plan, "u0").to_string(),
        "matched p, disk space at 84.0% < high 85% on /data: no disk pressure"
    );
    let broken = Given {
        history: records,
        disk: Some(Err("cannot measure the disk at /nope: no such file".into())),
    };
    let (inv, plan) = run(images, &pressure_config(""), &broken);
    assert!(plan.deletions.is_empty());
    assert_eq!(kind(&inv, &plan, "u0"), "disk_not_measured");
}

#[test]
fn pressure_keeps_keep_last_safety_and_children_before_parents() {
    let (mut images, mut records) = lru_five();
    // u0's child is used by a container: u0 stays whatever its last use says.
    images.push(
        image("kid")
            .label("stage", "builder")
            .parent("u0")
            .created(ago(30 * D))
            .size(500)
            .build(),
    );
    records.insert(fake_id("kid"), seen(20 * D, 20 * D));
    let usage = Given {
        history: records,
        ..disk_usage(900)
    };
    let inv = Inventory {
        images,
        containers: vec![container("c", "kid", "running")],
        build_cache: None,
    };
    let plan = plan_with(
        &inv,
        &pressure_config("    keep_last: 1\n"),
        &usage.usage(&inv.images),
        now(),
    );
    assert_eq!(kind(&inv, &plan, "kid"), "in_use");
    assert_eq!(kind(&inv, &plan, "u0"), "parent_of_in_use");
    // All five were built at the same time: the smaller ID counts as the newer, and u0,
    // kept in use, takes no place.
    assert_eq!(kind(&inv, &plan, "u1"), "among_newest");
    let evicted: Vec<_> = (2..5)
        .map(|k| kind(&inv, &plan, &format!("u{k}")))
        .collect();
    assert_eq!(evicted, ["disk_pressure"; 3]);
}

#[test]
fn always_deletions_count_towards_low() {
    let (mut images, records) = lru_five();
    images.push(
        image("junk")
            .label("junk", "1")
            .created(ago(30 * D))
            .size(800)
            .build(),
    );
    let mut c = pressure_config("");
    let mut junk = c.policies[0].clone();
    junk.name = "junk".into();
    junk.when = When::Always;
    junk.order = Order::Oldest;
    junk.matcher.labels = vec![config::LabelPredicate::parse("junk").expect("valid")];
    c.policies.insert(0, junk);
    let usage = Given {
        history: records,
        ..disk_usage(900)
    };
    let (inv, plan) = run(images, &c, &usage);
    assert_eq!(kind(&inv, &plan, "junk"), "matched");
    // 1100 to free, 800 already freed by `junk`: one image of 400 is enough.
    let evicted = (0..5)
        .filter(|k| kind(&inv, &plan, &format!("u{k}")) == "disk_pressure")
        .count();
    assert_eq!(evicted, 1);
}

fn arb_case() -> impl Strategy<Value = (Vec<(u64, i64, bool)>, u64)> {
    // Per image: size, days since last use, used by a container. Then bytes available.
    (
        prop::collection::vec((1u64..2000, 0i64..60, prop::bool::weighted(0.2)), 1..40),
        0u64..10_000,
    )
}

proptest! {
    /// Evictions are the least recently used evictable candidates, just enough to reach
    /// `low` (dropping the most recent one would not), nothing below `high`, and never an
    /// image in use.
    #[test]
    fn eviction_is_a_minimal_lru_prefix((specs, available) in arb_case()) {
        let mut images = Vec::new();
        let mut records = Records::default();
        let mut containers = Vec::new();
        for (k, (size, idle_days, in_use)) in specs.iter().enumerate() {
            let seed = format!("i{k}");
            images.push(image(&seed).label("stage", "builder").created(ago(90 * D)).size(*size).build());
            records.insert(fake_id(&seed), seen(80 * D, idle_days * D));
            if *in_use {
                containers.push(container(&format!("c{k}"), &seed, "running"));
            }
        }
        let usage = Given { history: records, ..disk_usage(available) };
        let inv = Inventory { images, containers, build_cache: None };
        let config = pressure_config("");
        let plan = plan_with(&inv, &config, &usage.usage(&inv.images), now());
        let over_high = available <= 1500; // 85 % of 10 000 used
        let to_free = (2000u64).saturating_sub(available);
        let evicted: Vec<usize> = (0..inv.images.len())
            .filter(|&i| plan.decisions[i].reason.kind() == "disk_pressure")
            .collect();
        for &i in &evicted {
            prop_assert!(!inv.containers.iter().any(|c| c.image_id == inv.images[i].id));
        }
        if !over_high {
            prop_assert!(evicted.is_empty());
            return Ok(());
        }
        let idle = |i: usize| specs[i].1;
        let freed: u64 = evicted.iter().map(|&i| inv.images[i].size).sum();
        let waiting: Vec<usize> = (0..inv.images.len())
            .filter(|&i| plan.decisions[i].reason.kind() == "no_disk_pressure")
            .collect();
        if !waiting.is_empty() {
            prop_assert!(freed >= to_free, "stopped early: {freed} < {to_free}");
            let least_recent_waiting = waiting.iter().map(|&i| idle(i)).max().unwrap_or(0);
            for &i in &evicted {
                prop_assert!(idle(i) >= least_recent_waiting, "LRU order");
            }
        }
        // No further: without the most recently used eviction, `low` was not reached yet.
        if let Some(&last) = evicted.iter().min_by_key(|&&i| (idle(i), std::cmp::Reverse(inv.images[i].id))) {
            prop_assert!(freed - inv.images[last].size < to_free, "one eviction too many");
        }
    }
}

#[test]
fn created_keys_give_back_their_seconds() {
    for s in [-5_000_000_000_i64, -1, 0, 1, 1_700_000_000] {
        let t = DateTime::from_timestamp(s, 999).expect("in range");
        assert_eq!(created_key_secs(time_key(t)), s);
    }
}
