//! The plan file: `plan --output json` writes [`stagesweep::plan_file::Document`] and `apply`
//! reads the same type back. A plan with deletions of several kinds (images in waves, a
//! tagged one with digests, build cache records with parents) round-trips: what `apply` reads
//! is exactly the plan's deletions, nothing planned again, nothing lost.

use crate::support;

use std::path::Path;

use stagesweep::engine::fake::{FakeEngine, fake_id, image};
use stagesweep::plan::Action;
use stagesweep::plan_file::{self, Document, JSON_VERSION};
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

#[tokio::test]
async fn a_plan_round_trips_through_the_one_schema() {
    let mut parent = cache_record("parent", 10, 300);
    parent.parents.clear();
    let mut child = cache_record("child", 10, 200);
    child.parents = vec!["parent".to_owned()];
    let engine = FakeEngine::builder()
        .image(old_builder("base"))
        .image(old_builder("step").parent("base"))
        .image(image("app1").tag("app:1").age(now(), hours(3)).size(4_000))
        .image(
            image("young")
                .label("stage", "builder")
                .age(now(), hours(0)),
        )
        .cache_record(parent)
        .cache_record(child)
        .cache_record(cache_record("fresh", 1, 50))
        .build();
    let cfg = config(POLICIES);
    let report = pass(&engine, &cfg, true).await;
    let text =
        serde_json::to_string(&report::to_json(&report, &report::ALL_ACTIONS)).expect("serializes");

    // The document reads back as the same type, with every image listed.
    let doc: Document = serde_json::from_str(&text).expect("the document reads back");
    assert_eq!(doc.version, JSON_VERSION);
    assert!(doc.dry_run);
    assert_eq!(doc.engine_id, report.engine_id);
    assert_eq!(doc.planned_at, report.planned_at);
    assert_eq!(doc.images.len(), report.plan.decisions.len());
    assert_eq!(doc.build_cache.records.len(), report.cache_records().len());

    // What apply reads: exactly the deletions, with their waves, reasons and identities.
    let saved = plan_file::parse(&text, Path::new("plan.json")).expect("a plan reads back");
    assert_eq!(saved.engine_id, report.engine_id);
    assert_eq!(saved.planned_at, report.planned_at);
    let planned: Vec<_> = report
        .plan
        .deletions
        .iter()
        .map(|d| {
            let decision = &report.plan.decisions[d.decision];
            let image = report.image(decision);
            (image.clone(), d.wave, d.reclaim_bytes, decision.clone())
        })
        .collect();
    assert_eq!(planned.len(), 3, "base, step and app:1 are deleted");
    assert_eq!(saved.plan.deletions.len(), planned.len());
    for (image, wave, bytes, decision) in &planned {
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
        let d = saved
            .plan
            .deletions
            .iter()
            .find(|d| d.decision == i)
            .expect("a deletion");
        assert_eq!((d.wave, d.reclaim_bytes), (*wave, *bytes));
        let rd = &saved.plan.decisions[i];
        assert_eq!(
            (rd.action, &rd.policy, &rd.reason),
            (Action::Delete, &decision.policy, &decision.reason)
        );
    }
    // Children before parents, as planned.
    let wave_of = |seed: &str| {
        let i = (saved.inventory.images.iter())
            .position(|x| x.id == fake_id(seed))
            .expect("read back");
        saved
            .plan
            .deletions
            .iter()
            .find(|d| d.decision == i)
            .expect("deleted")
            .wave
    };
    assert!(wave_of("step") < wave_of("base"));

    // The build cache deletions: the records, their reasons and waves.
    let records = report.cache_records();
    let planned: Vec<_> = (report.cache.plan.deletions.iter())
        .map(|d| {
            let decision = &report.cache.plan.decisions[d.decision];
            (&records[decision.record], d.wave, decision)
        })
        .collect();
    assert_eq!(planned.len(), 2, "parent and child are stale");
    assert_eq!(saved.cache.plan.deletions.len(), planned.len());
    for (record, wave, decision) in planned {
        let i = (saved.cache.records.iter())
            .position(|r| r.id == record.id)
            .expect("read back");
        assert_eq!(&saved.cache.records[i], record);
        let d = (saved.cache.plan.deletions.iter())
            .find(|d| d.decision == i)
            .expect("a deletion");
        assert_eq!(d.wave, wave);
        let rd = &saved.cache.plan.decisions[i];
        assert_eq!((&rd.rule, &rd.reason), (&decision.rule, &decision.reason));
    }
}
