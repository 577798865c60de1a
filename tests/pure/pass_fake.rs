//! Whole passes against the in-memory engine: execution follows the plan exactly.

use crate::support;

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use stagesweep::engine::EngineError;
use stagesweep::engine::fake::{FakeEngine, container, fake_id, image};
use stagesweep::execute::Outcome;
use stagesweep::inventory::ImageId;
use stagesweep::pass::{PassError, PassOptions, run_pass};
use stagesweep::plan::Action;
use support::passes::{builder_policy, config, hours, now, old_builder, outcome_of, pass};
use tokio_util::sync::CancellationToken;

fn ids(engine: &FakeEngine) -> HashSet<ImageId> {
    engine.images().into_iter().map(|i| i.id).collect()
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let engine = FakeEngine::builder()
        .image(old_builder("a"))
        .image(old_builder("b"))
        .build();
    let before = ids(&engine);
    let r = pass(&engine, &builder_policy("builders"), true).await;
    assert_eq!(r.plan.deletions.len(), 2);
    assert!(r.results.is_empty());
    assert!(engine.calls().is_empty());
    assert_eq!(ids(&engine), before);
    assert!(r.summary.dry_run);
}

#[tokio::test]
async fn a_classic_chain_is_deleted_leaf_first_one_image_per_call() {
    let engine = FakeEngine::builder()
        .image(old_builder("l1"))
        .image(old_builder("l2").parent("l1"))
        .image(old_builder("l3").parent("l2"))
        .image(image("final").tag("app:1").age(now(), hours(5)))
        .build();
    let r = pass(&engine, &builder_policy("builders"), false).await;
    for l in ["l3", "l2", "l1"] {
        assert_eq!(outcome_of(&r, l), &Outcome::Deleted, "{l}");
    }
    assert_eq!(
        engine.removed_names(),
        ["l3", "l2", "l1"].map(|l| fake_id(l).to_string()),
        "children first, each by its own call"
    );
    assert_eq!(engine.deleted_ids(), ["l3", "l2", "l1"].map(fake_id));
    assert_eq!(ids(&engine), HashSet::from([fake_id("final")]));
    assert_eq!(r.summary.deleted, 3);
}

#[tokio::test]
async fn a_kept_untagged_parent_is_not_deleted_with_its_child() {
    // The parent is not a builder image and the policy keeps parents: deleting the child
    // must not take it along (never a cascade: `noprune`).
    let engine = FakeEngine::builder()
        .image(image("base").age(now(), hours(9)))
        .image(old_builder("child").parent("base"))
        .build();
    let keep = config(
        "policies:\n  - name: builders\n    match:\n      labels: [stage=builder]\n    parents: keep\n",
    );
    let r = pass(&engine, &keep, false).await;
    assert_eq!(outcome_of(&r, "child"), &Outcome::Deleted);
    assert_eq!(ids(&engine), HashSet::from([fake_id("base")]));
    assert_eq!(engine.removed_names(), [fake_id("child").to_string()]);
}

#[tokio::test]
async fn an_untagged_parent_goes_by_its_own_call_after_its_child() {
    // The same host with `parents: delete` (the default): the plan names the parent, and
    // the executor deletes it by its own call once the child is gone.
    let engine = FakeEngine::builder()
        .image(image("base").age(now(), hours(9)))
        .image(old_builder("child").parent("base"))
        .build();
    let r = pass(&engine, &builder_policy("builders"), false).await;
    let d = r.decision_for(fake_id("base")).expect("planned");
    assert_eq!(d.reason.kind(), "parent_of_deleted");
    assert_eq!(
        d.reason.to_string(),
        format!(
            "parent of deleted image {} (builders, parents: delete)",
            fake_id("child").short()
        )
    );
    assert_eq!(outcome_of(&r, "base"), &Outcome::Deleted);
    assert!(ids(&engine).is_empty());
    assert_eq!(
        engine.removed_names(),
        ["child", "base"].map(|s| fake_id(s).to_string())
    );
}

#[tokio::test]
async fn failures_and_conflicts_do_not_stop_the_rest_of_the_plan() {
    let engine = FakeEngine::builder()
        .image(old_builder("busy"))
        .image(old_builder("broken"))
        .image(old_builder("gone"))
        .image(old_builder("fine"))
        .build();
    engine.fail_removal(
        &fake_id("busy").to_string(),
        EngineError::Conflict("image is being used by running container 1234".into()),
    );
    engine.fail_removal(
        &fake_id("broken").to_string(),
        EngineError::Other("500 driver failed".into()),
    );
    engine.fail_removal(
        &fake_id("gone").to_string(),
        EngineError::NotFound("No such image".into()),
    );
    let r = pass(&engine, &builder_policy("builders"), false).await;
    assert!(
        matches!(outcome_of(&r, "busy"), Outcome::Skipped { reason } if reason.contains("running container"))
    );
    assert!(
        matches!(outcome_of(&r, "broken"), Outcome::Failed { error } if error.contains("driver failed"))
    );
    assert_eq!(outcome_of(&r, "gone"), &Outcome::AlreadyGone);
    assert_eq!(outcome_of(&r, "fine"), &Outcome::Deleted);
    assert_eq!(
        (
            r.summary.skipped,
            r.summary.failed,
            r.summary.already_gone,
            r.summary.deleted
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn an_image_with_several_tags_loses_the_extra_ones_then_goes_by_id() {
    let engine = FakeEngine::builder()
        .image(old_builder("t").tag("app:1").tag("app:2"))
        .build();
    let r = pass(&engine, &builder_policy("builders"), false).await;
    assert_eq!(outcome_of(&r, "t"), &Outcome::Deleted);
    assert_eq!(
        engine.removed_names(),
        vec!["app:2".to_owned(), fake_id("t").to_string()],
        "the last tag goes with the image, by ID, so the daemon checks it atomically"
    );
    assert!(engine.images().is_empty());
}

#[tokio::test]
async fn in_use_images_survive_and_are_explained() {
    let engine = FakeEngine::builder()
        .image(old_builder("p"))
        .image(old_builder("c").parent("p"))
        .container(container("ctr", "c", "created"))
        .build();
    let r = pass(&engine, &builder_policy("builders"), false).await;
    assert!(r.plan.deletions.is_empty());
    assert!(engine.calls().is_empty());
    let texts: Vec<String> = r
        .plan
        .decisions
        .iter()
        .map(|d| d.reason.to_string())
        .collect();
    assert!(
        texts.iter().any(|t| t.starts_with("used by container")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("parent of")),
        "{texts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn deletions_run_concurrently_but_bounded() {
    let mut b = FakeEngine::builder().delay(Duration::from_millis(50));
    for i in 0..20 {
        b = b.image(old_builder(&format!("img{i}")));
    }
    let engine = b.build();
    let mut cfg = builder_policy("builders");
    cfg.docker.concurrency = 4;
    let r = pass(&engine, &cfg, false).await;
    assert_eq!(r.summary.deleted, 20);
    assert_eq!(engine.max_concurrent_removals(), 4);
}

#[tokio::test]
async fn a_stopped_pass_starts_no_deletion() {
    let engine = FakeEngine::builder().image(old_builder("a")).build();
    let stop = CancellationToken::new();
    stop.cancel();
    let r = run_pass(
        &engine,
        &builder_policy("builders"),
        now(),
        &PassOptions::default(),
        &stop,
    )
    .await
    .expect("inventory readable");
    assert_eq!(outcome_of(&r, "a"), &Outcome::NotAttempted);
    assert!(engine.calls().is_empty());
}

#[tokio::test]
async fn an_unreachable_engine_fails_the_pass_as_a_whole() {
    let engine = FakeEngine::builder().image(old_builder("a")).build();
    engine.set_unreachable(true);
    let err = run_pass(
        &engine,
        &builder_policy("builders"),
        now(),
        &PassOptions::default(),
        &CancellationToken::new(),
    )
    .await
    .expect_err("unreachable");
    assert!(matches!(
        err,
        PassError::Engine(EngineError::Unreachable { .. })
    ));
}

// Executed passes delete exactly what the plan says, whatever the shape.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn execution_deletes_nothing_the_plan_keeps(
        specs in prop::collection::vec((prop::option::of(0usize..12), any::<bool>(), any::<bool>(), 0u64..10, any::<bool>()), 1..12),
        in_use in prop::option::of(0usize..12),
    ) {
        let mut b = FakeEngine::builder();
        for (i, (parent, builder, tagged, age_h, project)) in specs.iter().enumerate() {
            let mut im = image(&format!("i{i}")).age(now(), hours(*age_h));
            if let Some(p) = parent.filter(|p| *p < i) {
                im = im.parent(&format!("i{p}"));
            }
            if *builder { im = im.label("stage", "builder"); }
            if *project { im = im.label("project", "a"); }
            if *tagged { im = im.tag(&format!("app:{i}")); }
            b = b.image(im);
        }
        if let Some(u) = in_use.filter(|u| *u < specs.len()) {
            b = b.container(container("c", &format!("i{u}"), "exited"));
        }
        let engine = b.build();
        let cfg = config("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    min_age: 2h\n    keep_last: 1\n    group_by: label:project\n");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let before = ids(&engine);
        let r = rt.block_on(pass(&engine, &cfg, false));
        let after = ids(&engine);
        let planned: HashSet<ImageId> = r.plan.with_action(Action::Delete).map(|d| r.image(d).id).collect();
        let gone: HashSet<ImageId> = before.difference(&after).copied().collect();
        prop_assert_eq!(&gone, &planned, "deleted set differs from the plan");
        prop_assert_eq!(r.summary.failed + r.summary.skipped, 0);
    }
}

#[test]
fn a_pass_can_run_on_a_multi_threaded_runtime() {
    fn assert_send<T: Send>(_: &T) {}
    let engine = FakeEngine::builder().build();
    let cfg = builder_policy("builders");
    let (opts, stop) = (PassOptions::default(), CancellationToken::new());
    let fut = run_pass(&engine, &cfg, now(), &opts, &stop);
    assert_send(&fut);
}
