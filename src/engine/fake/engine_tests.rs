//! The fake's daemon semantics, failure injection and gauges.

use std::time::Duration;

use futures_util::future::join_all;

use super::*;
use crate::engine::fake::*;
use crate::engine::*;
use crate::inventory::short_id;

/// The full ID of a seed, as the daemon spells it in names and `Deleted` records.
fn sid(seed: &str) -> String {
    fake_id(seed).to_string()
}

fn engine() -> FakeEngine {
    // base <- mid <- leaf (untagged chain), app:1 + app:2 on "app", "solo:1" alone.
    FakeEngine::builder()
        .image(image("base"))
        .image(image("mid").parent("base"))
        .image(image("leaf").parent("mid"))
        .image(image("app").tag("app:1").tag("app:2"))
        .image(image("solo").tag("solo:1"))
        .build()
}

#[tokio::test]
async fn untag_keeps_image_with_other_reference() {
    let fake = engine();
    let r = fake.remove_image("app:1").await.expect("untag");
    assert_eq!(r.untagged, vec!["app:1".to_owned()]);
    assert!(r.deleted.is_empty());
    assert_eq!(
        fake.image(fake_id("app")).expect("still there").references,
        vec!["app:2".to_owned()]
    );
}

#[tokio::test]
async fn last_reference_untags_and_deletes_with_a_layer_record() {
    let fake = engine();
    let r = fake.remove_image("solo:1").await.expect("delete");
    assert_eq!(r.untagged, vec!["solo:1".to_owned()]);
    assert_eq!(r.deleted.len(), 2, "image + layer record: {r:?}");
    assert_eq!(r.deleted[0], sid("solo"));
    assert_ne!(r.deleted[1], sid("solo"));
    assert!(fake.image(fake_id("solo")).is_none());
}

#[tokio::test]
async fn repo_without_tag_means_latest() {
    let fake = FakeEngine::builder()
        .image(image("l").tag("repo:latest"))
        .build();
    let r = fake.remove_image("repo").await.expect("latest");
    assert_eq!(r.untagged, vec!["repo:latest".to_owned()]);
}

#[tokio::test]
async fn remove_by_id_in_all_spellings() {
    let id = sid("solo");
    let hex = id.trim_start_matches("sha256:").to_owned();
    for name in [id.clone(), hex.clone(), hex[..12].to_owned()] {
        let fake = engine();
        let r = fake.remove_image(&name).await.expect("by id");
        assert_eq!(r.untagged, vec!["solo:1".to_owned()], "{name}");
        assert_eq!(r.deleted[0], id, "{name}");
    }
}

#[tokio::test]
async fn unknown_names_are_not_found() {
    let fake = engine();
    for name in ["nope:1", "sha256:ffff0000", "zz"] {
        let err = fake.remove_image(name).await.expect_err("unknown");
        assert_eq!(err, EngineError::NotFound(format!("No such image: {name}")));
    }
}

#[tokio::test]
async fn by_id_with_two_references_is_a_conflict() {
    let fake = engine();
    let err = fake.remove_image(&sid("app")).await.expect_err("409");
    let short = fake_id("app").short();
    assert_eq!(
        err,
        EngineError::Conflict(format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        ))
    );
    assert_eq!(
        fake.image(fake_id("app")).expect("kept").references.len(),
        2
    );
}

#[tokio::test]
async fn images_used_by_containers_conflict() {
    let fake = engine();
    fake.add_container(container("c1", "solo", "created"));
    let c1 = short_id(&container("c1", "solo", "created").id).to_owned();
    let img = fake_id("solo").short();
    let err = fake
        .remove_image("solo:1")
        .await
        .expect_err("last ref in use");
    assert_eq!(
        err,
        EngineError::Conflict(format!(
            "conflict: unable to remove repository reference \"solo:1\" (must force) - container {c1} is using its referenced image {img}"
        ))
    );
    let err = fake
        .remove_image(&sid("solo"))
        .await
        .expect_err("id in use");
    assert_eq!(
        err,
        EngineError::Conflict(format!(
            "conflict: unable to delete {img} (must be forced) - image is being used by stopped container {c1}"
        ))
    );
    assert_eq!(
        fake.image(fake_id("solo")).expect("kept").references,
        vec!["solo:1".to_owned()]
    );

    fake.add_container(container("c2", "leaf", "running"));
    let err = fake.remove_image(&sid("leaf")).await.expect_err("running");
    assert!(
        matches!(&err, EngineError::Conflict(m) if m.contains("(cannot be forced) - image is being used by running container")),
        "{err:?}"
    );

    // Untagging one of two references is allowed even when in use.
    fake.add_container(container("c3", "app", "running"));
    fake.remove_image("app:2").await.expect("untag in use");
}

#[tokio::test]
async fn parents_with_children_conflict_by_id_and_are_only_untagged_by_reference() {
    let fake = FakeEngine::builder()
        .image(image("p").tag("base:1"))
        .image(image("c").parent("p"))
        .build();
    let err = fake.remove_image(&sid("p")).await.expect_err("has child");
    assert!(
        matches!(&err, EngineError::Conflict(m) if m.ends_with("(cannot be forced) - image has dependent child images")),
        "{err:?}"
    );
    let r = fake.remove_image("base:1").await.expect("untag only");
    assert_eq!(r.untagged, vec!["base:1".to_owned()]);
    assert!(r.deleted.is_empty());
    assert!(
        fake.image(fake_id("p"))
            .expect("kept")
            .references
            .is_empty()
    );
}

#[tokio::test]
async fn deleting_a_leaf_never_deletes_its_parents() {
    let fake = engine();
    let r = fake.remove_image(&sid("leaf")).await.expect("leaf");
    assert_eq!(r.deleted[0], sid("leaf"));
    assert!(fake.image(fake_id("mid")).is_some());
    assert_eq!(fake.deleted_ids(), vec![fake_id("leaf")]);
}

#[tokio::test]
async fn by_id_a_single_tag_and_its_digests_go_with_the_image() {
    let mut img = image("d").tag("app:1").build();
    img.digests = vec!["app@sha256:ff".to_owned()];
    let fake = FakeEngine::builder().image(img).build();
    let r = fake.remove_image(&sid("d")).await.expect("by id");
    assert_eq!(
        r.untagged,
        vec!["app:1".to_owned(), "app@sha256:ff".to_owned()]
    );
    assert!(fake.images().is_empty());
}

#[tokio::test]
async fn a_hook_changes_the_world_before_each_call_is_answered() {
    let fake = engine();
    let mut calls = 0;
    fake.set_hook(Box::new(move |call, world| {
        calls += 1;
        if calls == 2 {
            assert_eq!(call, Call::Inspect("solo:1"));
            world.tag(fake_id("app"), "solo:1");
        }
    }));
    assert_eq!(fake.list_images().await.expect("list").len(), 5);
    let moved = fake.inspect_image("solo:1").await.expect("inspect");
    assert_eq!(moved.id, fake_id("app"), "the tag moved before the answer");
    assert!(
        fake.image(fake_id("solo"))
            .expect("kept")
            .references
            .is_empty()
    );
}

#[tokio::test]
async fn injected_failures_and_the_call_log() {
    let fake = engine();
    fake.fail_removal("solo:1", EngineError::Other("boom".into()));
    assert_eq!(
        fake.remove_image("solo:1").await,
        Err(EngineError::Other("boom".into()))
    );
    fake.remove_image("app:1").await.expect("other names work");
    fake.clear_failures();
    fake.remove_image("solo:1").await.expect("cleared");
    assert_eq!(fake.removed_names(), vec!["solo:1", "app:1", "solo:1"]);
    let calls = fake.calls();
    assert_eq!((calls[0].ok, calls[1].ok), (false, true));
}

#[tokio::test]
async fn unreachable_switch_fails_every_call() {
    let fake = engine();
    fake.set_unreachable(true);
    assert!(matches!(
        fake.ping().await,
        Err(EngineError::Unreachable { .. })
    ));
    assert!(matches!(
        fake.list_images().await,
        Err(EngineError::Unreachable { .. })
    ));
    assert!(matches!(
        fake.list_containers().await,
        Err(EngineError::Unreachable { .. })
    ));
    assert!(matches!(
        fake.remove_image("solo:1").await,
        Err(EngineError::Unreachable { .. })
    ));
    fake.set_unreachable(false);
    assert_eq!(fake.list_images().await.expect("reachable again").len(), 5);
}

#[tokio::test]
async fn concurrency_gauge_sees_parallel_removals() {
    let mut b = FakeEngine::builder().delay(Duration::from_millis(5));
    for n in 0..6 {
        b = b.image(image(&n.to_string()));
    }
    let fake = b.build();
    let ids: Vec<String> = (0..6).map(|n| sid(&n.to_string())).collect();
    join_all(ids[..4].iter().map(|id| fake.remove_image(id))).await;
    assert_eq!(fake.max_concurrent_removals(), 4);
    for id in &ids[4..] {
        fake.remove_image(id).await.expect("sequential");
    }
    assert_eq!(fake.max_concurrent_removals(), 4);
    assert!(fake.images().is_empty());
}

#[test]
fn fake_ids_are_full_deterministic_and_distinct() {
    assert_eq!(fake_id("a"), fake_id("a"));
    assert_ne!(fake_id("a").short(), fake_id("b").short());
    assert_eq!(
        fake_id(&sid("a")),
        fake_id("a"),
        "a full ID is taken as it is"
    );
}
