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
        id: id.to_owned(),
        parents: Vec::new(),
        kind: CacheType::Regular,
        description: format!("mount / from exec {id}"),
        size,
        created: Some(now() - chrono::Duration::seconds(30 * DAY)),
        last_used: Some(now() - chrono::Duration::seconds(idle_days * DAY)),
        usage_count: 1,
        shared: false,
        in_use: false,
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
    let p = plan(&records, &[rule("stale", Some(7), None)], now());
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
    let p = plan(&records, &[mounts, all], now());
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
    let p = plan(&records, &[rule("budget", None, Some(450))], now());
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
    let p = plan(&records, &[rule("both", Some(7), Some(150))], now());
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
    let p = plan(&records, &[rule("stale", Some(7), None)], now());
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
    let p = plan(&records, &[rule("stale", Some(7), None)], now());
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
    let p = plan(&records, &[], now());
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
        let p = plan(&records, &rules, now());
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
