//! The plan file: `plan --output json` writes [`stagesweep::plan_file::Document`] and `apply`
//! reads the same type back. A plan with deletions of several kinds (images in waves, a
//! tagged one with digests and a tag time, build cache records with parents) round-trips:
//! what `apply` reads is exactly the plan's deletions, nothing planned again, nothing lost.

use crate::support;

use std::path::Path;

use stagesweep::engine::fake::{FakeEngine, fake_id, image};
use stagesweep::pass::PassReport;
use stagesweep::plan::Action;
use stagesweep::plan_file::{self, Document, JSON_VERSION, SavedPlan};
use stagesweep::report;
use support::passes::{cache_record, config, hours, now, old_builder, pass};

const POLICIES: &str = "\
policies:
  - name: builders
    match:
      labels: [stage=builder]
    min_age: 1h
  - name: old-apps
    match:
      references: [\"app:*\"]
    max_age: 2h
    min_age: 1h
build_cache:
  - name: stale
    unused_for: 7d
";

/// A dry run over images and build cache records to delete and to keep, its JSON text, and
/// that text read back as a plan.
async fn planned() -> (PassReport, String, SavedPlan) {
    let mut child = cache_record("child", 10, 200);
    child.parents = vec!["parent".to_owned()];
    let mut app = (image("app1").tag("app:1").age(now(), hours(4)).size(4_000)).build();
    app.digests = vec![format!("app@sha256:{}", "ab".repeat(32))];
    app.last_tagged = Some(now() - chrono::Duration::hours(3));
    let young = image("young")
        .label("stage", "builder")
        .age(now(), hours(0));
    let engine = FakeEngine::builder()
        .image(old_builder("base"))
        .image(old_builder("step").parent("base"))
        .image(app)
        .image(young)
        .cache_record(cache_record("parent", 10, 300))
        .cache_record(child)
        .cache_record(cache_record("fresh", 1, 50))
        .build();
    let report = pass(&engine, &config(POLICIES), true).await;
    let doc = report::to_json(&report, &report::ALL_ACTIONS);
    let text = serde_json::to_string(&doc).expect("serializes");
    let saved = plan_file::parse(&text, Path::new("plan.json")).expect("a plan reads back");
    (report, text, saved)
}

#[tokio::test]
async fn a_plan_round_trips_through_the_one_schema() {
    let (report, text, saved) = planned().await;
    // The document reads back as the same type, with every image and record listed.
    let doc: Document = serde_json::from_str(&text).expect("the document reads back");
    assert_eq!((doc.version, doc.dry_run), (JSON_VERSION, true));
    assert_eq!(
        (&*doc.engine_id, doc.planned_at),
        (&*report.engine_id, report.planned_at)
    );
    assert_eq!(doc.images.len(), report.plan.decisions.len());
    assert_eq!(doc.build_cache.records.len(), report.cache_records().len());

    // What apply reads: exactly the deletions, with their waves, reasons and identities.
    assert_eq!(
        (&saved.engine_id, saved.planned_at),
        (&report.engine_id, report.planned_at)
    );
    assert_eq!(
        report.plan.deletions.len(),
        3,
        "base, step and app:1 are deleted"
    );
    assert_eq!(saved.plan.deletions.len(), report.plan.deletions.len());
    for deletion in &report.plan.deletions {
        let decision = &report.plan.decisions[deletion.decision];
        let image = report.image(decision);
        let i = (saved.inventory.images.iter())
            .position(|x| x.id == image.id)
            .unwrap_or_else(|| panic!("{} read back", image.id));
        let read = &saved.inventory.images[i];
        assert_eq!(
            (&read.references, &read.digests, read.parent_id),
            (&image.references, &image.digests, image.parent_id)
        );
        assert_eq!(
            (read.created, read.last_tagged, read.size),
            (image.created, image.last_tagged, image.size)
        );
        let d = (saved.plan.deletions.iter())
            .find(|d| d.decision == i)
            .expect("a deletion");
        assert_eq!(
            (d.wave, d.reclaim_bytes),
            (deletion.wave, deletion.reclaim_bytes)
        );
        let rd = &saved.plan.decisions[i];
        assert_eq!(
            (rd.action, &rd.policy, &rd.reason),
            (Action::Delete, &decision.policy, &decision.reason)
        );
    }
    let read = |seed: &str| {
        let i = (saved.inventory.images.iter())
            .position(|x| x.id == fake_id(seed))
            .expect("read back");
        let wave = (saved.plan.deletions.iter())
            .find(|d| d.decision == i)
            .expect("deleted")
            .wave;
        (&saved.inventory.images[i], wave)
    };
    assert!(read("step").1 < read("base").1, "children before parents");
    let (app, _) = read("app1");
    assert!(
        app.last_tagged.is_some() && !app.digests.is_empty(),
        "{app:?}"
    );
}

#[tokio::test]
async fn the_build_cache_deletions_round_trip_with_their_waves_and_reasons() {
    let (report, _, saved) = planned().await;
    let records = report.cache_records();
    assert_eq!(
        report.cache.plan.deletions.len(),
        2,
        "parent and child are stale"
    );
    assert_eq!(
        saved.cache.plan.deletions.len(),
        report.cache.plan.deletions.len()
    );
    for deletion in &report.cache.plan.deletions {
        let decision = &report.cache.plan.decisions[deletion.decision];
        let record = &records[decision.record];
        let i = (saved.cache.records.iter())
            .position(|r| r.id == record.id)
            .expect("read back");
        assert_eq!(&saved.cache.records[i], record);
        let d = (saved.cache.plan.deletions.iter())
            .find(|d| d.decision == i)
            .expect("a deletion");
        assert_eq!(d.wave, deletion.wave);
        let rd = &saved.cache.plan.decisions[i];
        assert_eq!((&rd.rule, &rd.reason), (&decision.rule, &decision.reason));
    }
}
