use chrono::{TimeZone, Utc};

use super::*;
use crate::config;
use crate::engine::fake::{container, image};
use crate::history::Source;
use crate::inventory::Inventory;
use crate::plan::{Usage, plan_with};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// Project a: a classic chain P ← C (C holds P's 100 bytes and adds 50); b and c: two
/// parentless images sharing a 30-byte base (X adds 50, Y 20). What the engine stores:
/// 100 + 50 + 50 + 20 + 30 = 250 bytes of layers.
fn inventory() -> Inventory {
    Inventory {
        images: vec![
            image("p").label("project", "a").size(100).build(),
            image("c")
                .label("project", "a")
                .parent("p")
                .tag("app:1")
                .size(150)
                .build(),
            image("x")
                .label("project", "b")
                .tag("bee:1")
                .size(80)
                .shared(30)
                .build(),
            image("y").label("project", "c").size(50).shared(30).build(),
        ],
        containers: vec![container("k", "y", "running")],
        build_cache: None,
    }
}

fn config() -> config::Config {
    let text =
        "policies:\n  - name: old-a\n    match:\n      labels: [project=a]\n    min_age: 1h\n";
    config::parse_str(text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn record(id: &str, size: u64, shared: bool, in_use: bool) -> CacheRecord {
    CacheRecord {
        last_used: Some(now() - chrono::Duration::days(3)),
        shared,
        in_use,
        ..crate::engine::fake::cache_record(id, size)
    }
}

fn report(by: &SpaceGroup, top: Option<usize>, layers: Option<u64>) -> DuReport {
    let used = |days| {
        Some(Record::new(
            (now() - chrono::Duration::days(days)).timestamp(),
            Source::Event,
        ))
    };
    report_with(by, top, layers, &[used(2), used(9), None, used(1)])
}

fn report_with(
    by: &SpaceGroup,
    top: Option<usize>,
    layers: Option<u64>,
    history: &[Option<Record>],
) -> DuReport {
    let inv = inventory();
    let plan = plan_with(&inv, &config(), &Usage::default(), now());
    let records = [
        record("r1", 7, false, false),
        record("r2", 5, false, true),
        record("r3", 900, true, false),
    ];
    let cache = crate::plan::build_cache::plan(&records, &[], inv.images.len(), now());
    group(
        &DuInput {
            images: &inv.images,
            plan: &plan,
            records: &records,
            cache: &cache,
            history,
            layers_size: layers,
            planned_at: now(),
            gone_images: &[],
            gone_records: &[],
        },
        by,
        top,
    )
}

fn row<'a>(r: &'a DuReport, name: &str) -> &'a DuRow {
    r.groups
        .iter()
        .find(|g| g.group == name)
        .unwrap_or_else(|| panic!("no row {name}: {r:#?}"))
}

#[test]
fn each_byte_is_counted_once_and_the_lines_add_up_to_the_engines_total() {
    let r = report(&SpaceGroup::Label("project".into()), None, Some(250));
    let names: Vec<_> = r
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.bytes))
        .collect();
    assert_eq!(
        names,
        [
            ("a", 150),
            ("b", 50),
            ("c", 20),
            ("shared", 30),
            ("build cache", 12)
        ],
        "largest first, then the shared layers and the private build cache records"
    );
    assert_eq!(r.total_bytes, 262);
    assert_eq!(r.engine_total_bytes, Some(262));
    for g in &r.groups {
        let states: u64 = State::ALL.iter().map(|&s| g.state_bytes(s)).sum();
        assert_eq!(states, g.bytes, "{g:?}");
    }
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn bytes_are_split_by_what_a_pass_would_do_now() {
    let r = report(&SpaceGroup::Label("project".into()), None, Some(250));
    let a = row(&r, "a");
    assert_eq!(
        (a.count, a.reclaimable_bytes, a.kept_bytes),
        (2, 150, 0),
        "old-a deletes both"
    );
    let c = row(&r, "c");
    assert_eq!((c.protected_bytes, c.kept_bytes), (20, 0), "y is in use");
    assert_eq!(row(&r, "b").kept_bytes, 50, "no policy");
    let cache = row(&r, "build cache");
    assert_eq!(
        (cache.count, cache.protected_bytes, cache.kept_bytes),
        (2, 5, 7)
    );
    assert_eq!(
        a.oldest_last_use.map(|t| t.timestamp()),
        Some((now() - chrono::Duration::days(9)).timestamp()),
        "the least recent of the group's uses"
    );
    assert_eq!(row(&r, "b").oldest_last_use, None, "no record");
    let unmeasured = Reason::DiskNotMeasured {
        policy: "p".into(),
        error: "e".into(),
    };
    assert_eq!(state_of(Action::Keep, &unmeasured), State::Pressure);
}

#[test]
fn groups_beyond_top_are_summed_into_other() {
    let r = report(&SpaceGroup::Label("project".into()), Some(1), Some(250));
    let other = row(&r, "other");
    assert_eq!(
        (other.kind, other.count, other.bytes),
        (RowKind::Other, 2, 70)
    );
    assert_eq!(other.protected_bytes, 20);
    assert_eq!(r.groups[0].group, "a");
    assert_eq!(r.total_bytes, 262, "the same total");
}

#[test]
fn policy_and_repository_groupings_name_what_has_none() {
    let r = report(&SpaceGroup::Policy, None, Some(250));
    assert_eq!(row(&r, "old-a").bytes, 150);
    assert_eq!(row(&r, "(no policy)").bytes, 70);
    let r = report(&SpaceGroup::Repository, None, Some(250));
    assert_eq!(row(&r, "app").bytes, 50, "C added 50 bytes on top of P");
    assert_eq!(row(&r, "(untagged)").bytes, 120);
    assert_eq!(row(&r, "bee").bytes, 50);
}

#[test]
fn without_the_engines_layers_total_the_shared_line_is_empty_and_said_so() {
    let r = report(&SpaceGroup::Policy, None, None);
    assert_eq!(row(&r, "shared").bytes, 0);
    assert_eq!(r.engine_total_bytes, None);
    assert_eq!(r.total_bytes, 220 + 12);
    assert!(r.notes[0].contains("LayersSize"), "{:?}", r.notes);
    let over = report(&SpaceGroup::Policy, None, Some(200));
    assert!(over.notes[0].contains("20 bytes more"), "{:?}", over.notes);
}

#[test]
fn an_image_the_history_only_adopted_or_listed_has_no_last_use() {
    let at = |days, by| {
        Some(Record::new(
            (now() - chrono::Duration::days(days)).timestamp(),
            by,
        ))
    };
    let by = SpaceGroup::Label("project".into());
    // Group a: used 2 days ago, and adopted 9 days ago (no use seen): the oldest use is 2 days.
    let r = report_with(
        &by,
        None,
        None,
        &[
            at(2, Source::Event),
            at(9, Source::Adopted),
            None,
            at(1, Source::Listing),
        ],
    );
    assert_eq!(
        row(&r, "a").oldest_last_use.map(|t| t.timestamp()),
        Some((now() - chrono::Duration::days(2)).timestamp()),
        "an adopted image's time is not a use"
    );
    assert_eq!(
        row(&r, "c").oldest_last_use,
        None,
        "first found in a listing"
    );
    let r = report_with(&by, None, None, &[None, at(9, Source::Created), None, None]);
    assert_eq!(
        row(&r, "a").oldest_last_use.map(|t| t.timestamp()),
        Some((now() - chrono::Duration::days(9)).timestamp()),
        "an image present when the history began counts its creation"
    );
}
