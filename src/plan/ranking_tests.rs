//! The orders `lfu` and `size`, for `when: disk_pressure` and `max_total_size`, with plain
//! values: images, history records with use counts, a disk figure.

use chrono::{DateTime, TimeZone, Utc};

use crate::config::{self, Config};
use crate::engine::fake::{fake_id, image};
use crate::history::{Record, Records, Source, Uses};
use crate::inventory::{DiskUsage, Image, Inventory};
use crate::plan::{Plan, Reason, Usage, plan_with};

const D: i64 = 86_400;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn ago(secs: i64) -> i64 {
    now().timestamp() - secs
}

/// A builder image of `bytes`, built 30 days ago.
fn builder(seed: &str, bytes: u64) -> Image {
    image(seed)
        .label("stage", "builder")
        .created(now() - chrono::Duration::days(30))
        .size(bytes)
        .build()
}

/// Last used `used` seconds ago; `uses` counted at the last use (half-life 7d).
fn record(used: i64, count: u32) -> Record {
    let mut r = Record::new(ago(20 * D), Source::Event);
    r.used(ago(used), Source::Event);
    let mut u = Uses::NONE;
    for _ in 0..count {
        u.add(ago(used), 7 * D);
    }
    r.set_use_count(u);
    r
}

fn config(order: &str, rule: &str) -> Config {
    let text = format!(
        "policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    min_age: 1h\n\
         {rule}{order}disk:\n  high: 85\n  low: 80\n"
    );
    config::parse_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn pressure(order: &str) -> Config {
    config(order, "    when: disk_pressure\n")
}

/// Plan `images` with `records` on a 10 000-byte disk with `available` bytes free.
fn run(
    images: Vec<Image>,
    records: &Records,
    config: &Config,
    available: u64,
) -> (Inventory, Plan) {
    let inv = Inventory {
        images,
        containers: Vec::new(),
        build_cache: None,
    };
    let usage = Usage {
        history: Usage::records_of(&inv.images, records),
        disk: Some(Ok(DiskUsage {
            source: "/data".into(),
            capacity_bytes: 10_000,
            available_bytes: available,
            inodes: None,
        })),
    };
    let plan = plan_with(&inv, config, &usage, now());
    (inv, plan)
}

/// The seeds of the eviction order.
fn evicted(inv: &Inventory, plan: &Plan, seeds: &[&str]) -> Vec<String> {
    let order = plan.eviction.as_ref().expect("over high");
    (order.entries.iter())
        .map(|e| {
            let id = inv.images[e.decision].id;
            let seed = seeds.iter().find(|s| fake_id(s) == id).expect("known");
            (*seed).to_owned()
        })
        .collect()
}

fn reason<'p>(inv: &Inventory, plan: &'p Plan, seed: &str) -> &'p Reason {
    let i = (inv.images.iter())
        .position(|im| im.id == fake_id(seed))
        .expect("in inventory");
    &plan.decisions[i].reason
}

/// The case: `often` used five times ten days ago, `once` used once a day ago.
fn often_and_once() -> (Vec<Image>, Records) {
    let images = vec![builder("often", 400), builder("once", 400)];
    let records = [("often", record(10 * D, 5)), ("once", record(D, 1))]
        .into_iter()
        .map(|(s, r)| (fake_id(s), r))
        .collect();
    (images, records)
}

#[test]
fn under_pressure_lfu_evicts_the_once_used_image_first_and_lru_the_other() {
    let (images, records) = often_and_once();
    let seeds = ["often", "once"];
    // 91 % used: 1100 bytes to free, both go; the order is what differs.
    let (inv, plan) = run(images.clone(), &records, &pressure(""), 900);
    assert_eq!(evicted(&inv, &plan, &seeds), ["often", "once"], "lru");
    let (inv, plan) = run(images.clone(), &records, &pressure("    order: lfu\n"), 900);
    assert_eq!(evicted(&inv, &plan, &seeds), ["once", "often"], "lfu");
    // 5 uses 10 days ago are 5 · 2^(-10/7) ≈ 1.86 now; 1 use a day ago ≈ 0.91.
    let text = reason(&inv, &plan, "once").to_string();
    assert!(
        text.contains("evicted by order lfu: 0.9 recent uses (half-life 7d), fewest first"),
        "{text}"
    );
    let json = serde_json::to_value(reason(&inv, &plan, "often")).expect("json");
    assert_eq!(json["ranked"]["order"], "lfu");
    assert!((json["ranked"]["recent_uses"].as_f64().expect("a number") - 1.86).abs() < 0.01);
    // With 500 bytes to free (85 %) and images of 600, only the first goes.
    let images = vec![builder("often", 600), builder("once", 600)];
    let (inv, plan) = run(images, &records, &pressure("    order: lfu\n"), 1500);
    assert_eq!(reason(&inv, &plan, "once").kind(), "disk_pressure");
    assert_eq!(reason(&inv, &plan, "often").kind(), "no_disk_pressure");
}

#[test]
fn lfu_ties_go_by_last_use_and_lru_reasons_carry_no_note() {
    let images = vec![builder("a", 400), builder("b", 400), builder("c", 400)];
    // No uses counted at all (a history written before counts): lfu is lru.
    let records: Records = [
        ("a", record(2 * D, 0)),
        ("b", record(5 * D, 0)),
        ("c", record(D, 0)),
    ]
    .into_iter()
    .map(|(s, r)| (fake_id(s), r))
    .collect();
    let (inv, plan) = run(images.clone(), &records, &pressure("    order: lfu\n"), 500);
    assert_eq!(evicted(&inv, &plan, &["a", "b", "c"]), ["b", "a", "c"]);
    let (inv, plan) = run(images, &records, &pressure(""), 500);
    let json = serde_json::to_value(reason(&inv, &plan, "b")).expect("json");
    assert!(json.get("ranked").is_none(), "lru JSON as before: {json}");
}

#[test]
fn size_evicts_the_largest_first_among_the_most_idle_day() {
    let images = vec![
        builder("small-old", 100),
        builder("big-old", 900),
        builder("huge-recent", 2000),
        builder("mid-old", 500),
    ];
    // Three idle for 9 days (different hours), one used an hour ago.
    let records: Records = [
        ("small-old", record(9 * D + 7200, 3)),
        ("big-old", record(9 * D, 3)),
        ("mid-old", record(9 * D + 3600, 3)),
        ("huge-recent", record(3600, 3)),
    ]
    .into_iter()
    .map(|(s, r)| (fake_id(s), r))
    .collect();
    let seeds = ["small-old", "big-old", "huge-recent", "mid-old"];
    let (inv, plan) = run(images.clone(), &records, &pressure("    order: size\n"), 0);
    assert_eq!(
        evicted(&inv, &plan, &seeds),
        ["big-old", "mid-old", "small-old", "huge-recent"]
    );
    let text = reason(&inv, &plan, "big-old").to_string();
    assert!(
        text.contains("order size: idle 9 days, 900 B, largest first among the most idle"),
        "{text}"
    );
    let (inv, plan) = run(images, &records, &pressure(""), 0);
    assert_eq!(
        evicted(&inv, &plan, &seeds),
        ["small-old", "mid-old", "big-old", "huge-recent"],
        "lru: by last use alone"
    );
}

#[test]
fn max_total_size_follows_the_order_too() {
    let budget = "    max_total_size: 500B\n";
    let (images, records) = often_and_once();
    let (inv, plan) = run(images.clone(), &records, &config("", budget), 10_000);
    assert_eq!(
        reason(&inv, &plan, "often").kind(),
        "over_size_budget",
        "lru"
    );
    assert_eq!(reason(&inv, &plan, "once").kind(), "within_policy");
    let (inv, plan) = run(
        images,
        &records,
        &config("    order: lfu\n", budget),
        10_000,
    );
    assert_eq!(
        reason(&inv, &plan, "once").kind(),
        "over_size_budget",
        "lfu"
    );
    assert_eq!(reason(&inv, &plan, "often").kind(), "within_policy");
    let text = reason(&inv, &plan, "once").to_string();
    assert!(
        text.ends_with(
            "> max_total_size 500 B (order lfu: 0.9 recent uses (half-life 7d), fewest first)"
        ),
        "{text}"
    );
    let images = vec![builder("small", 300), builder("big", 600)];
    let records: Records = [("small", record(2 * D, 1)), ("big", record(D, 1))]
        .into_iter()
        .map(|(s, r)| (fake_id(s), r))
        .collect();
    let (inv, plan) = run(
        images,
        &records,
        &config("    order: size\n", budget),
        10_000,
    );
    assert_eq!(
        reason(&inv, &plan, "small").kind(),
        "over_size_budget",
        "the most idle day goes first, whatever its size"
    );
}

#[test]
fn policies_of_different_orders_merge_by_least_recent_use() {
    let text = "policies:\n  - name: counted\n    match:\n      labels: [team=a]\n    min_age: 1h\n    \
                when: disk_pressure\n    order: lfu\n  - name: plain\n    match:\n      labels: [team=b]\n    \
                min_age: 1h\n    when: disk_pressure\ndisk:\n  high: 85\n  low: 80\n";
    let cfg = config::parse_str(text, "t.yaml").unwrap_or_else(|e| panic!("{e}"));
    let mk = |seed: &str, team: &str| {
        image(seed)
            .label("team", team)
            .created(now() - chrono::Duration::days(30))
            .size(100)
            .build()
    };
    let images = vec![
        mk("a-often", "a"),
        mk("a-once", "a"),
        mk("b-old", "b"),
        mk("b-new", "b"),
    ];
    let records: Records = [
        ("a-often", record(10 * D, 5)),
        ("a-once", record(D, 1)),
        ("b-old", record(3 * D, 0)),
        ("b-new", record(12 * D, 0)),
    ]
    .into_iter()
    .map(|(s, r)| (fake_id(s), r))
    .collect();
    let seeds = ["a-often", "a-once", "b-old", "b-new"];
    let (inv, plan) = run(images, &records, &cfg, 0);
    // Queues: a (lfu) = a-once, a-often; b (lru) = b-new, b-old. Merged by the heads' last
    // use: b-new (12 d), b-old (3 d), a-once (1 d), a-often.
    assert_eq!(
        evicted(&inv, &plan, &seeds),
        ["b-new", "b-old", "a-once", "a-often"]
    );
}
