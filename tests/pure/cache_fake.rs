//! Whole passes with build cache against the in-memory engine: dry runs change nothing,
//! deletions go children first with the engine-side checks, a record used since the plan is
//! kept by the engine, engines without a build cache API get one notice, and the report and
//! summary count cache records apart from images.

use crate::support;

use std::time::Duration;

use stagesweep::engine::fake::{FakeEngine, image};
use stagesweep::execute::CacheOutcome;
use stagesweep::execute::build_cache as cache_execute;
use stagesweep::inventory::CacheType;
use stagesweep::plan::Action;
use stagesweep::plan::build_cache as cache_plan;
use stagesweep::report;
use support::passes::{cache_record, config, now, pass};
use tokio_util::sync::CancellationToken;

const STALE: &str = "build_cache:\n  - name: stale\n    unused_for: 7d\n";

fn ids(engine: &FakeEngine) -> Vec<String> {
    engine.cache_records().into_iter().map(|r| r.id).collect()
}

/// base <- step <- leaf, all stale; a fresh record; a busy one; a shared one, and the image
/// that holds it.
fn engine() -> FakeEngine {
    let mut step = cache_record("step", 9, 200);
    step.parents = vec!["base".into()];
    let mut leaf = cache_record("leaf", 8, 300);
    leaf.parents = vec!["step".into()];
    let mut busy = cache_record("busy", 20, 50);
    busy.in_use = true;
    let mut shared = cache_record("shared", 20, 70);
    shared.shared = true;
    FakeEngine::builder()
        .clock(now())
        .cache_record(cache_record("base", 10, 100))
        .cache_record(step)
        .cache_record(leaf)
        .cache_record(cache_record("fresh", 1, 400))
        .cache_record(busy)
        .cache_record(shared)
        .image(image("holder"))
        .build()
}

#[tokio::test]
async fn a_dry_run_plans_the_cache_and_changes_nothing() {
    let engine = engine();
    let r = pass(&engine, &config(STALE), true).await;
    assert_eq!(r.cache.plan.deletions.len(), 3);
    assert!(engine.cache_calls().is_empty());
    assert_eq!(ids(&engine).len(), 6);
    let s = &r.summary.build_cache;
    assert_eq!((s.records, s.total_bytes, s.in_use), (6, 1120, 1));
    assert_eq!((s.kept, s.deleted), (3, 0));
    assert_eq!(s.kept_by_reason.get("in_use"), Some(&1));
    assert_eq!(s.kept_by_reason.get("shared"), Some(&1));
    let line = report::cache_summary_line(&r).expect("a cache line");
    assert_eq!(
        line,
        "build cache: would delete 3 records, reclaim ~600 B of 1.1 kB, keep 3, leave 0 untouched"
    );
}

/// The same records with no image left: the shared record claims an image that is not there
/// (what Docker 28.5 on the containerd store shows for builder stages), so the default
/// `shared: exclude` does not keep it forever; the engine is asked with `all` (it still
/// says shared) and the unused-for check.
#[tokio::test]
async fn a_shared_record_no_image_can_hold_is_deleted_as_unheld() {
    let engine = engine();
    engine.drop_image(stagesweep::engine::fake::fake_id("holder"));
    let r = pass(&engine, &config(STALE), false).await;
    let shared = (r.cache.plan.decisions.iter())
        .find(|d| engine_record(&r, d.record) == "shared")
        .expect("the shared record is planned");
    assert_eq!(shared.reason.kind(), "unheld_shared", "{}", shared.reason);
    let call = (engine.cache_calls().into_iter())
        .find(|c| c.ids == ["shared"])
        .expect("the shared record is pruned");
    assert!(call.all && call.unused_for.is_some(), "{call:?}");
    assert!(!ids(&engine).contains(&"shared".to_owned()));
    assert_eq!(r.cache.plan.reclaimable_bytes, 600 + 70);
}

fn engine_record(r: &stagesweep::pass::PassReport, i: usize) -> String {
    r.inventory.build_cache.as_deref().expect("records")[i]
        .id
        .clone()
}

#[tokio::test]
async fn a_pass_deletes_children_first_with_the_engine_checks() {
    let engine = engine();
    let r = pass(&engine, &config(STALE), false).await;
    let order: Vec<Vec<String>> = engine.cache_calls().into_iter().map(|c| c.ids).collect();
    assert_eq!(
        order,
        [["leaf", "step", "base"]],
        "one call, children first: the engine frees a parent once its child went"
    );
    for call in engine.cache_calls() {
        assert_eq!(call.unused_for, Some(Duration::from_secs(7 * 86_400)));
        assert!(!call.all);
    }
    assert_eq!(ids(&engine), ["fresh", "busy", "shared"]);
    let s = &r.summary.build_cache;
    assert_eq!((s.deleted, s.reclaimed_bytes, s.failed), (3, 600, 0));
    assert_eq!(s.bytes_by_rule.get("stale"), Some(&600));
    assert_eq!(r.summary.deleted, 0, "images are counted apart");
    assert!(!r.summary.some_failed());
    let text = report::render_text(&r, &[Action::Delete]);
    assert!(text.contains("CACHE RECORD"), "{text}");
    assert!(
        text.contains("build cache: deleted 3 records, reclaimed 600 B of 1.1 kB"),
        "{text}"
    );
    let doc = serde_json::to_value(report::to_json(&r, &report::ALL_ACTIONS)).expect("json");
    let first = &doc["build_cache"]["records"][0];
    assert_eq!(first["id"], "leaf");
    assert_eq!(first["outcome"]["kind"], "deleted");
    assert_eq!(first["reason"]["kind"], "unused_for");
    assert_eq!(doc["summary"]["build_cache"]["deleted"], 3);
}

#[tokio::test]
async fn a_record_used_since_the_plan_is_kept_by_the_engine_and_so_are_its_parents() {
    let engine = engine();
    let records = engine.cache_records();
    let plan = cache_plan::plan(&records, &config(STALE).build_cache, usize::MAX, now());
    // A build reuses `leaf` after the plan was made.
    let mut used = cache_record("leaf", 0, 300);
    used.parents = vec!["step".into()];
    let engine_now = FakeEngine::builder().clock(now());
    let engine2 = records
        .iter()
        .map(|r| {
            if r.id == "leaf" {
                used.clone()
            } else {
                r.clone()
            }
        })
        .fold(
            engine_now,
            stagesweep::engine::fake::FakeEngineBuilder::cache_record,
        )
        .build();
    let run = cache_execute::execute(&engine2, &plan, &records, &CancellationToken::new()).await;
    let outcomes: Vec<(String, String)> = (run.results.iter())
        .map(|r| (records[r.decision].id.clone(), r.outcome.kind().to_owned()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("leaf".to_owned(), "skipped".to_owned()),
            ("step".to_owned(), "skipped".to_owned()),
            ("base".to_owned(), "skipped".to_owned())
        ]
    );
    assert_eq!(engine2.cache_calls().len(), 1, "one call for the chain");
    let CacheOutcome::Skipped { reason } = &run.results[1].outcome else {
        panic!("step is skipped");
    };
    assert_eq!(reason, "child record leaf was not deleted");
    assert_eq!(engine2.cache_records().len(), 6);
    drop(engine);
}

#[tokio::test]
async fn an_engine_without_a_prune_api_gets_one_notice_and_no_error() {
    let engine = FakeEngine::builder()
        .clock(now())
        .cache_record(cache_record("a", 10, 10))
        .cache_record(cache_record("b", 10, 10))
        .no_prune_api()
        .build();
    let r = pass(&engine, &config(STALE), false).await;
    assert_eq!(
        engine.cache_calls().len(),
        1,
        "one call, then the section is skipped"
    );
    let notice = r.cache.notice.as_deref().expect("a notice");
    assert!(notice.contains("no build cache API"), "{notice}");
    assert_eq!(r.summary.build_cache.skipped, 2);
    assert_eq!(r.summary.build_cache.failed, 0);
    assert!(!r.summary.some_failed());
    assert_eq!(
        report::cache_summary_line(&r).as_deref(),
        Some(format!("build cache: {notice}").as_str())
    );
}

#[tokio::test]
async fn an_engine_without_build_cache_gets_a_notice_only_when_rules_exist() {
    let engine = FakeEngine::builder().image(image("a")).build();
    engine.remove_build_cache();
    let r = pass(&engine, &config(STALE), true).await;
    assert!(
        r.cache
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("reports no build cache"))
    );
    let r = pass(&engine, &config("policies: []\n"), true).await;
    assert_eq!(r.cache.notice, None);
    assert_eq!(report::cache_summary_line(&r), None, "nothing to say");
}

#[tokio::test]
async fn the_host_hint_speaks_when_only_build_cache_is_there() {
    let engine = FakeEngine::builder()
        .clock(now())
        .cache_record(cache_record("big", 1, 2_000_000_000))
        .build();
    let builder_policy =
        "policies:\n  - name: builders\n    match:\n      labels: [stage=builder]\n";
    let r = pass(&engine, &config(builder_policy), true).await;
    let hint = r.host_hint.as_deref().expect("a hint");
    assert!(hint.contains("2.0 GB of build cache") && hint.contains("add build_cache: rules"));
    assert!(report::render_text(&r, &report::ALL_ACTIONS).contains(hint));
    let r = pass(&engine, &config(&format!("{builder_policy}{STALE}")), true).await;
    assert!(
        r.host_hint
            .as_deref()
            .is_some_and(|h| h.contains("rules manage it"))
    );
    assert_eq!(r.cache.plan.decisions[0].action, Action::Keep);
}

#[tokio::test]
async fn adhoc_flags_leave_the_build_cache_alone() {
    let mut cfg = config(STALE);
    let args = stagesweep::cmd::cli::AdhocArgs {
        labels: vec!["stage=builder".into()],
        ..stagesweep::cmd::cli::AdhocArgs::default()
    };
    stagesweep::cmd::apply_adhoc(&mut cfg, &args).expect("valid flags");
    assert!(cfg.build_cache.is_empty());
    let engine = engine();
    let r = pass(&engine, &cfg, false).await;
    assert!(engine.cache_calls().is_empty());
    assert!(r.cache.plan.deletions.is_empty());
    assert!(
        r.cache
            .plan
            .decisions
            .iter()
            .all(|d| d.action != Action::Delete)
    );
}

#[tokio::test]
async fn records_with_the_same_checks_go_in_one_call() {
    let mut builder = FakeEngine::builder().clock(now());
    for i in 0..5 {
        builder = builder.cache_record(cache_record(&format!("r{i}"), 10 + i, 10));
    }
    let mut mount = cache_record("mount", 10, 10);
    mount.kind = CacheType::ExecCachemount;
    let engine = builder.cache_record(mount).build();
    let r = pass(&engine, &config(STALE), false).await;
    let calls: Vec<usize> = (engine.cache_calls().into_iter())
        .map(|c| c.ids.len())
        .collect();
    assert_eq!(calls, [6], "one call for every type with the same checks");
    assert_eq!(r.summary.build_cache.deleted, 6);
    assert!(engine.cache_records().is_empty());
    let deleted: Vec<usize> = r.cache.results.iter().map(|x| x.decision).collect();
    let planned: Vec<usize> = r.cache.plan.deletions.iter().map(|d| d.decision).collect();
    assert_eq!(deleted, planned, "results in plan order");
}

#[tokio::test]
async fn a_saved_plan_applies_its_cache_deletions_with_the_same_checks() {
    let engine = engine();
    let planned = pass(&engine, &config(STALE), true).await;
    let text = serde_json::to_string(&report::to_json(&planned, &report::ALL_ACTIONS))
        .expect("serializes");
    let saved = stagesweep::plan_file::parse(&text, std::path::Path::new("plan.json"))
        .expect("a plan reads back");
    let ids: Vec<&str> = (saved.cache.plan.deletions.iter())
        .map(|d| saved.cache.records[d.decision].id.as_str())
        .collect();
    assert_eq!(ids, ["leaf", "step", "base"], "in execution order");
    // Between review and apply a build uses `leaf` again: it and its parents stay.
    let fresh = FakeEngine::builder().clock(now());
    let mut leaf = cache_record("leaf", 0, 300);
    leaf.parents = vec!["step".into()];
    let engine2 = (engine.cache_records().into_iter())
        .map(|r| if r.id == "leaf" { leaf.clone() } else { r })
        .fold(
            fresh,
            stagesweep::engine::fake::FakeEngineBuilder::cache_record,
        )
        .build();
    let records = saved.cache.records.clone();
    let run = cache_execute::execute(
        &engine2,
        &saved.cache.plan,
        &records,
        &CancellationToken::new(),
    )
    .await;
    assert!(run.results.iter().all(|r| r.outcome.kind() == "skipped"));
    assert_eq!(engine2.cache_records().len(), 6);
    // Unchanged, the same plan deletes its three records.
    let run = cache_execute::execute(
        &engine,
        &saved.cache.plan,
        &records,
        &CancellationToken::new(),
    )
    .await;
    assert!(
        run.results
            .iter()
            .all(|r| r.outcome == CacheOutcome::Deleted)
    );
    assert_eq!(ids.len(), 3);
    assert_eq!(engine.cache_records().len(), 3);
    let mut edited: serde_json::Value = serde_json::from_str(&text).expect("json");
    edited["build_cache"]["records"][0]["wave"] = serde_json::json!(5);
    let err = stagesweep::plan_file::parse(&edited.to_string(), std::path::Path::new("e.json"))
        .expect_err("a parent before its child is refused");
    assert!(
        err.to_string()
            .contains("would be deleted before its child"),
        "{err}"
    );
}

#[tokio::test]
async fn layers_the_build_cache_keeps_are_not_claimed_as_freed() {
    use stagesweep::engine::fake::{Call, fake_id};
    use support::passes::old_builder;
    // A BuildKit-built image: its 1000-byte layer is also a shared cache record. Another
    // image's record is shared too and stays so (that image is kept).
    let engine = FakeEngine::builder()
        .clock(now())
        .image(old_builder("built").size(1000).shared(0))
        .image(image("kept").size(500).shared(0))
        .cache_record(cache_record("layer", 1, 1000))
        .cache_record(cache_record("other", 1, 500))
        .build();
    engine.cache_holds_layers_of("layer", fake_id("built"));
    engine.cache_holds_layers_of("other", fake_id("kept"));
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&reads);
    engine.set_hook(Box::new(move |call, _| {
        if call == Call::DiskUsage {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }));
    let cfg = config("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n");
    let r = pass(&engine, &cfg, false).await;
    let s = &r.summary;
    assert_eq!((s.deleted, s.estimated_bytes), (1, 1000));
    assert_eq!(s.held_by_build_cache_bytes, 1000, "{s:#?}");
    assert_eq!(s.reclaimed_bytes, 0, "nothing freed until the cache goes");
    assert_eq!(s.measured_bytes, None);
    let line = report::report_summary_line(&r);
    assert!(
        line.contains("reclaimed ~0 B (estimate; 1.0 kB of their layers stay in the build cache until it goes)"),
        "{line}"
    );
    assert_eq!(
        reads.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "read again after the deletions"
    );
    // Without a shared record, the data usage is not read again.
    let plain = FakeEngine::builder()
        .clock(now())
        .image(old_builder("b"))
        .build();
    let again = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&again);
    plain.set_hook(Box::new(move |call, _| {
        if call == Call::DiskUsage {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }));
    let r = pass(&plain, &cfg, false).await;
    assert_eq!(r.summary.held_by_build_cache_bytes, 0);
    assert_eq!(again.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_host_hint_counts_what_is_left_after_the_pass_and_what_is_shared() {
    let shared = stagesweep::inventory::CacheRecord {
        shared: true,
        ..cache_record("shared", 1, 300_000_000)
    };
    let engine = FakeEngine::builder()
        .clock(now())
        .cache_record(cache_record("stale", 30, 2_000_000_000))
        .cache_record(shared)
        .build();
    let builders = "policies:\n  - name: builders\n    match:\n      labels: [stage=builder]\n";
    let cfg = config(&format!("{builders}{STALE}"));
    let dry = pass(&engine, &cfg, true).await;
    let hint = dry.host_hint.as_deref().expect("a hint");
    assert!(
        hint.contains("holds 2.3 GB of build cache (300.0 MB shared with images, 2.0 GB not)"),
        "{hint}"
    );
    let done = pass(&engine, &cfg, false).await;
    assert_eq!(done.summary.build_cache.deleted, 1);
    let hint = done.host_hint.as_deref().expect("a hint");
    assert!(
        hint.contains("holds 300.0 MB of build cache (300.0 MB shared with images, 0 B not)"),
        "the figure once the pass is done, not the listing's: {hint}"
    );
}

/// A classic builder's step image (it has a parent) holds no build cache record: with it as
/// the only image, the shared record is beyond what the images can hold.
#[tokio::test]
async fn an_image_with_a_parent_holds_no_shared_record() {
    let mut shared = cache_record("shared", 20, 70);
    shared.shared = true;
    let with = |holder: stagesweep::engine::fake::ImageBuilder| {
        FakeEngine::builder()
            .clock(now())
            .cache_record(shared.clone())
            .image(image("base"))
            .image(holder)
            .build()
    };
    let kind = |r: &stagesweep::pass::PassReport| r.cache.plan.decisions[0].reason.kind();
    // Two parentless images: the shared record may be held.
    let r = pass(&with(image("holder")), &config(STALE), true).await;
    assert_eq!(kind(&r), "shared");
    // One parentless image (the base): at depth 1 there is one shared record; still held.
    let r = pass(&with(image("step").parent("base")), &config(STALE), true).await;
    assert_eq!(kind(&r), "shared");
    // A second shared record at the same depth is one more than the base can hold.
    let mut other = cache_record("other", 30, 90);
    other.shared = true;
    let engine = FakeEngine::builder()
        .clock(now())
        .cache_record(shared.clone())
        .cache_record(other)
        .image(image("base"))
        .image(image("step").parent("base"))
        .build();
    let r = pass(&engine, &config(STALE), true).await;
    let kinds: Vec<&str> = (r.cache.plan.decisions.iter())
        .map(|d| d.reason.kind())
        .collect();
    assert_eq!(kinds, ["shared", "unheld_shared"], "{:?}", r.cache.plan);
    let text = r.cache.plan.decisions[1].reason.to_string();
    assert!(
        text.ends_with("take all 1 images without a parent"),
        "{text}"
    );
}
