//! The build cache planner on plain values: rules, reasons, `keep_storage`, parent chains,
//! and the safety invariants as a property.

use std::time::Duration;

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;
use crate::config::{CacheRule, SharedRecords, default_cache_types};
use crate::inventory::{CacheRecord, CacheType};
use crate::plan::Action;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
}

const DAY: i64 = 86_400;

/// A regular record of `size` bytes last used `idle_days` ago.
fn rec(id: &str, idle_days: i64, size: u64) -> CacheRecord {
    CacheRecord {
        description: format!("mount / from exec {id}"),
        created: Some(now() - chrono::Duration::seconds(30 * DAY)),
        last_used: Some(now() - chrono::Duration::seconds(idle_days * DAY)),
        ..crate::engine::fake::cache_record(id, size)
    }
}

fn rule(name: &str, unused_days: Option<u64>, keep: Option<u64>) -> CacheRule {
    CacheRule {
        name: name.to_owned(),
        types: default_cache_types(),
        shared: SharedRecords::Exclude,
        unused_for: unused_days.map(|d| Duration::from_secs(d * 86_400)),
        keep_storage: keep,
    }
}

fn kinds(p: &CachePlan) -> Vec<&'static str> {
    p.decisions.iter().map(|d| d.reason.kind()).collect()
}

#[test]
fn unused_for_deletes_idle_records_and_explains_the_rest() {
    let mut in_use = rec("busy", 30, 10);
    in_use.in_use = true;
    let mut shared = rec("shared", 30, 10);
    shared.shared = true;
    let mut internal = rec("internal", 30, 10);
    internal.kind = CacheType::Internal;
    let records = vec![
        rec("old", 8, 100),
        rec("new", 1, 100),
        in_use,
        shared,
        internal,
    ];
    let p = plan(&records, &[rule("stale", Some(7), None)], usize::MAX, now());
    assert_eq!(
        kinds(&p),
        [
            "unused_for",
            "used_recently",
            "in_use",
            "shared",
            "no_rule_matches"
        ]
    );
    let actions: Vec<Action> = p.decisions.iter().map(|d| d.action).collect();
    assert_eq!(
        actions,
        [
            Action::Delete,
            Action::Keep,
            Action::Keep,
            Action::Keep,
            Action::Untouched
        ]
    );
    assert_eq!(p.decisions[0].rule.as_deref(), Some("stale"));
    assert_eq!(
        p.decisions[0].reason.to_string(),
        "matched stale, unused for 8d >= unused_for 7d"
    );
    assert_eq!(
        p.decisions[1].reason.to_string(),
        "matched stale, used 24h ago < unused_for 7d"
    );
    assert_eq!(
        p.decisions[3].reason.to_string(),
        "shared with an image; stale excludes shared records"
    );
    assert_eq!(p.deletions.len(), 1);
    assert_eq!((p.reclaimable_bytes, p.total_bytes), (100, 230));
    assert_eq!(p.order[0], 0, "deletions come first");
}

#[test]
fn the_first_rule_that_selects_a_record_decides_and_shared_include_frees_nothing() {
    let mut shared = rec("shared", 30, 50);
    shared.shared = true;
    let mut mount = rec("mount", 2, 70);
    mount.kind = CacheType::ExecCachemount;
    let records = vec![shared, mount, rec("step", 2, 10)];
    let mounts = CacheRule {
        types: vec![CacheType::ExecCachemount],
        ..rule("mounts", Some(1), None)
    };
    let all = CacheRule {
        shared: SharedRecords::Include,
        ..rule("all", Some(7), None)
    };
    let p = plan(&records, &[mounts, all], usize::MAX, now());
    assert_eq!(kinds(&p), ["unused_for", "unused_for", "used_recently"]);
    let rules: Vec<_> = p.decisions.iter().map(|d| d.rule.as_deref()).collect();
    assert_eq!(rules, [Some("all"), Some("mounts"), Some("all")]);
    let bytes: Vec<(usize, u64)> = p
        .deletions
        .iter()
        .map(|d| (d.decision, d.reclaim_bytes))
        .collect();
    assert_eq!(
        bytes,
        [(0, 0), (1, 70)],
        "a shared record's bytes stay with its image"
    );
}

#[test]
fn keep_storage_deletes_the_least_recently_used_until_the_rule_fits() {
    let mut busy = rec("busy", 40, 300);
    busy.in_use = true;
    let records = vec![
        rec("a", 5, 100),
        rec("b", 9, 100),
        rec("c", 1, 100),
        busy,
        rec("d", 3, 100),
    ];
    // 700 bytes held, 450 allowed: b (9d), a (5d), d (3d) go; the in-use record counts but stays.
    let p = plan(
        &records,
        &[rule("budget", None, Some(450))],
        usize::MAX,
        now(),
    );
    assert_eq!(
        kinds(&p),
        [
            "over_keep_storage",
            "over_keep_storage",
            "within_keep_storage",
            "in_use",
            "over_keep_storage"
        ]
    );
    let totals: Vec<String> = p.decisions.iter().map(|d| d.reason.to_string()).collect();
    assert_eq!(
        totals[1],
        "matched budget, least recently used while 700 B > keep_storage 450 B"
    );
    assert_eq!(totals[2], "matched budget, 400 B within keep_storage 450 B");
    let order: Vec<&str> = p
        .deletions
        .iter()
        .map(|d| records[d.decision].id.as_str())
        .collect();
    assert_eq!(order, ["b", "a", "d"], "oldest use first");
}

#[test]
fn unused_for_and_keep_storage_both_delete() {
    let records = vec![rec("old", 10, 100), rec("mid", 3, 100), rec("new", 1, 100)];
    let p = plan(
        &records,
        &[rule("both", Some(7), Some(150))],
        usize::MAX,
        now(),
    );
    assert_eq!(
        kinds(&p),
        ["unused_for", "over_keep_storage", "used_recently"]
    );
}

#[test]
fn parents_of_kept_records_stay_and_children_go_first() {
    // base <- step <- leaf ; leaf is fresh, so step and base (planned) stay.
    let mut step = rec("step", 20, 10);
    step.parents = vec!["base".into()];
    let mut leaf = rec("leaf", 1, 10);
    leaf.parents = vec!["step".into()];
    // root <- mid <- top, all old: deleted top first.
    let mut mid = rec("mid", 20, 10);
    mid.parents = vec!["root".into(), "missing".into()];
    let mut top = rec("top", 20, 10);
    top.parents = vec!["mid".into()];
    let records = vec![
        rec("base", 20, 10),
        step,
        leaf,
        rec("root", 20, 10),
        mid,
        top,
    ];
    let p = plan(&records, &[rule("stale", Some(7), None)], usize::MAX, now());
    assert_eq!(
        kinds(&p),
        [
            "parent_of_kept",
            "parent_of_kept",
            "used_recently",
            "unused_for",
            "unused_for",
            "unused_for"
        ]
    );
    assert_eq!(
        p.decisions[0].reason.to_string(),
        "parent of kept record step"
    );
    let order: Vec<(&str, usize)> = (p.deletions.iter())
        .map(|d| (records[d.decision].id.as_str(), d.wave))
        .collect();
    assert_eq!(order, [("top", 0), ("mid", 1), ("root", 2)]);
}

#[test]
fn unknown_times_keep_a_record_and_cycles_end() {
    let mut unknown = rec("unknown", 30, 10);
    unknown.last_used = None;
    unknown.created = None;
    let mut a = rec("a", 30, 10);
    a.parents = vec!["b".into()];
    let mut b = rec("b", 30, 10);
    b.parents = vec!["a".into()];
    let records = vec![unknown, a, b];
    let p = plan(&records, &[rule("stale", Some(7), None)], usize::MAX, now());
    assert_eq!(p.decisions[0].reason.kind(), "unknown_last_use");
    assert_eq!(p.decisions[0].action, Action::Keep);
    assert_eq!(
        p.decisions.len(),
        3,
        "a parent cycle does not hang the planner"
    );
}

#[test]
fn no_rules_leave_every_record_untouched() {
    let records = vec![rec("a", 30, 10), rec("b", 0, 20)];
    let p = plan(&records, &[], usize::MAX, now());
    assert!(p.decisions.iter().all(|d| d.action == Action::Untouched));
    assert!(p.deletions.is_empty());
    assert_eq!(p.total_bytes, 30);
}

fn arb_records() -> impl Strategy<Value = Vec<CacheRecord>> {
    let one = (
        0i64..20,
        0u64..500,
        any::<bool>(),
        any::<bool>(),
        0usize..4,
        0usize..3,
    );
    prop::collection::vec(one, 0..24).prop_map(|specs| {
        (specs.into_iter().enumerate())
            .map(|(i, (idle, size, in_use, shared, kind, parent))| {
                let mut r = rec(&format!("r{i}"), idle, size);
                r.in_use = in_use && i % 3 == 0;
                r.shared = shared && i % 4 == 0;
                r.kind = [
                    CacheType::Regular,
                    CacheType::SourceLocal,
                    CacheType::Internal,
                    CacheType::ExecCachemount,
                ][kind]
                    .clone();
                // An earlier record as parent (a chain, as BuildKit makes them), sometimes none.
                if parent > 0 && i > 0 {
                    r.parents = vec![format!("r{}", (i * 7 + parent) % i)];
                }
                r
            })
            .collect()
    })
}

proptest! {
    /// Nothing in use, nothing a staying record builds on, nothing outside a rule's types and
    /// nothing shared without `shared: include` is ever planned for deletion; a parent is
    /// deleted after its planned children.
    #[test]
    fn deletions_are_always_safe(records in arb_records(), keep in 0u64..3000, days in 0u64..12) {
        let rules = [rule("a", Some(days), Some(keep))];
        let p = plan(&records, &rules, usize::MAX, now());
        let wave: std::collections::HashMap<&str, usize> = (p.deletions.iter())
            .map(|d| (records[d.decision].id.as_str(), d.wave))
            .collect();
        for d in &p.deletions {
            let r = &records[d.decision];
            prop_assert!(!r.in_use && !r.shared);
            prop_assert!(rules[0].types.contains(&r.kind));
            for child in records.iter().filter(|c| c.parents.contains(&r.id)) {
                let child_wave = wave.get(child.id.as_str());
                prop_assert!(child_wave.is_some(), "{} stays but builds on {}", child.id, r.id);
                prop_assert!(child_wave < Some(&d.wave));
            }
        }
        prop_assert_eq!(p.decisions.len(), records.len());
    }
}

/// A shared record `id` on `parent` (none for a root), last used `idle_days` ago.
fn shared_on(id: &str, parent: Option<&str>, idle_days: i64) -> CacheRecord {
    let mut r = rec(id, idle_days, 1000);
    r.shared = true;
    r.parents = parent.map(|p| vec![p.to_owned()]).unwrap_or_default();
    r
}

/// What Docker 28.5 on the containerd store shows after builds `FROM base` with a builder
/// stage: the base image's two records (shared: the image holds them), the app image's
/// chain on top (shared), and each old build's builder-stage chain (no layer of its own,
/// so it inherits the base image's chain and claims shared too).
fn after_builds() -> Vec<CacheRecord> {
    vec![
        shared_on("base1", None, 30),
        shared_on("base2", Some("base1"), 30),
        shared_on("app3", Some("base2"), 0),
        shared_on("app4", Some("app3"), 0),
        shared_on("stageA3", Some("base2"), 0),
        shared_on("stageA4", Some("stageA3"), 0),
        shared_on("stageB3", Some("base2"), 20),
        shared_on("stageB4", Some("stageB3"), 20),
        shared_on("stageC3", Some("base2"), 21),
        shared_on("stageC4", Some("stageC3"), 21),
    ]
}

#[test]
fn shared_records_no_listed_image_can_hold_are_deleted_as_unheld() {
    let records = after_builds();
    // Three images: at most three shared records per depth are held.
    let p = plan(&records, &[rule("r", Some(7), None)], 3, now());
    let by_id = |id: &str| {
        let i = records.iter().position(|r| r.id == id).expect("listed");
        &p.decisions[i]
    };
    for held in [
        "base1", "base2", "app3", "app4", "stageA3", "stageA4", "stageB3", "stageB4",
    ] {
        assert_ne!(
            by_id(held).action,
            Action::Delete,
            "{held}: {:?}",
            by_id(held)
        );
    }
    assert_eq!(by_id("base2").reason.kind(), "shared");
    // The newest three at depths 3 and 4 are app, stage A and stage B: those are kept as
    // shared; stage C's (older) go, child first, with their own reason and their bytes
    // counted.
    assert_eq!(by_id("stageB3").reason.kind(), "shared");
    for gone in ["stageC3", "stageC4"] {
        assert_eq!(by_id(gone).reason.kind(), "unheld_shared", "{gone}");
        let text = by_id(gone).reason.to_string();
        assert!(
            text.contains("claims shared") && text.contains("all 3 images"),
            "{text}"
        );
    }
    let waves: Vec<(&str, usize)> = (p.deletions.iter())
        .map(|d| (records[d.decision].id.as_str(), d.wave))
        .collect();
    assert_eq!(waves, [("stageC4", 0), ("stageC3", 1)]);
    assert_eq!(p.reclaimable_bytes, 2000);
    // With enough images every shared record may be held: nothing goes.
    let p = plan(&records, &[rule("r", Some(7), None)], 4, now());
    assert!(p.deletions.is_empty(), "{:?}", kinds(&p));
    // Fewer images, more records go: with two, stage B's too.
    let p = plan(&records, &[rule("r", Some(7), None)], 2, now());
    assert_eq!(p.deletions.len(), 4, "{:?}", kinds(&p));
}

#[test]
fn unheld_records_still_wait_for_unused_for_and_odd_chains_are_left_as_the_engine_says() {
    let mut records = after_builds();
    // No image at all: every shared record is unheld, but stage A's were used today.
    let p = plan(&records, &[rule("r", Some(7), None)], 0, now());
    assert_eq!(p.decisions[4].reason.kind(), "used_recently");
    assert_eq!(p.decisions[8].reason.kind(), "unheld_shared");
    assert_eq!(p.decisions[0].reason.kind(), "parent_of_kept");
    // A record on two parents, or on a parent the listing lacks, has no plain depth.
    records[8].parents = vec!["base2".to_owned(), "stageB3".to_owned()];
    records[9].parents = vec!["gone".to_owned()];
    let p = plan(&records, &[rule("r", Some(7), None)], 2, now());
    assert_eq!(p.decisions[8].reason.kind(), "shared");
    assert_eq!(p.decisions[9].reason.kind(), "shared");
}

proptest! {
    /// A shared record is deleted only as `unheld_shared`, and at each depth at least as
    /// many shared records stay as there are images (or all of them).
    #[test]
    fn shared_records_go_only_beyond_what_the_images_can_hold(
        records in arb_records(),
        images in 0usize..4,
    ) {
        let p = plan(&records, &[rule("a", Some(0), None)], images, now());
        let links = Links::new(&records);
        let depths = super::super::unheld::depths(&records, &links.parents);
        let mut shared_at = std::collections::HashMap::<usize, (usize, usize)>::new();
        for (i, r) in records.iter().enumerate() {
            let deleted = p.decisions[i].action == Action::Delete;
            if r.shared && deleted {
                prop_assert_eq!(p.decisions[i].reason.kind(), "unheld_shared");
            }
            if let (true, false, Some(d)) = (r.shared, r.in_use, depths[i]) {
                let e = shared_at.entry(d).or_default();
                e.0 += 1;
                e.1 += usize::from(!deleted);
            }
        }
        for (all, stay) in shared_at.into_values() {
            prop_assert!(stay >= all.min(images), "{} of {} stay", stay, all);
        }
    }
}
