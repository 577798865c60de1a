//! What differs between engines, against the real one at `DOCKER_HOST` (scripts/test.sh runs
//! this crate on its private dockerd and again on its private Podman service, with
//! `STAGESWEEP_TEST_ENGINE=podman`): which engine it is, reference spellings seen by protect
//! and match globs in both directions, a kept child's parent surviving a pass (Podman deletes
//! a parent with children without complaint), a multi-tag image deleted by ID.

use crate::support;

use stagesweep::engine::docker::DockerEngine;
use stagesweep::engine::{Engine, EngineError, EngineKind};
use stagesweep::plan::{Action, Reason};
use support::fixture::{self, FixtureImage, days_ago};
use support::images::{base_image, build_classic};
use support::passes::{config, decision, pass_now};
use support::{Scope, TEST_LABEL, TestEngine, chain, engine_or_fail, reported, test_engine};

async fn present(engine: &DockerEngine, id: &str) -> bool {
    let images = engine.list_images().await.expect("list images");
    images.iter().any(|i| i.id == *id)
}

/// The fully qualified spelling of a name without a registry, as this engine implies it:
/// Podman's local `localhost/`, Docker Hub's `docker.io/` on Docker.
fn qualified(name: &str) -> String {
    match test_engine() {
        TestEngine::Podman => format!("localhost/{name}"),
        TestEngine::Docker => format!("docker.io/{name}"),
    }
}

#[tokio::test]
async fn the_engine_is_detected_and_named() {
    let engine = engine_or_fail().await;
    let info = engine.info().await.expect("info");
    let want = match test_engine() {
        TestEngine::Docker => EngineKind::Docker,
        TestEngine::Podman => EngineKind::Podman,
    };
    assert_eq!(info.kind, want, "{info:?}");
    assert_eq!(engine.kind(), want);
    let described = engine.describe();
    let name = if want == EngineKind::Podman {
        "podman"
    } else {
        "docker"
    };
    assert!(described.starts_with(name), "{described}");
}

#[tokio::test]
async fn protect_globs_see_the_familiar_and_the_qualified_spelling() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("names-protect").await;
    let id = &scope.id;
    let (familiar, qualified_tag, loose) = (
        format!("keepme-{id}/x:1"),
        format!("keepq-{id}/y:1"),
        format!("loose-{id}/z:1"),
    );
    let ids = fixture::load(
        &scope.docker,
        &[
            FixtureImage::new(&scope.label(), days_ago(3)).tag(&familiar),
            FixtureImage::new(&scope.label(), days_ago(3)).tag(&qualified_tag),
            FixtureImage::new(&scope.label(), days_ago(3)).tag(&loose),
        ],
    )
    .await;
    // One glob in the docker CLI's familiar form, one fully qualified: each must protect
    // on either engine, whichever spelling the engine reports.
    let by_familiar = format!("keepme-{id}/*");
    let by_qualified = format!("{}:*", qualified(&format!("keepq-{id}/y")));
    let cfg = config(&format!(
        "protect:\n  references: [\"{by_familiar}\", \"{by_qualified}\"]\n\
         policies:\n  - name: test\n    match:\n      labels: [\"{}\"]\n    min_age: 0s\n",
        scope.selector()
    ));
    let report = pass_now(&engine, &cfg, false).await;

    for (image, pattern) in [(&ids[0], &by_familiar), (&ids[1], &by_qualified)] {
        let d = decision(&report, image);
        assert_eq!(
            d.reason,
            Reason::ProtectedReference {
                pattern: pattern.clone()
            },
            "{d:?}"
        );
        assert!(present(&engine, image).await, "{pattern} protected it");
    }
    assert_eq!(decision(&report, &ids[2]).action, Action::Delete);
    assert!(
        !present(&engine, &ids[2]).await,
        "the unprotected one is gone"
    );
    let kept = engine.inspect_image(&ids[0]).await.expect("still there");
    assert_eq!(kept.references, vec![reported(&familiar)]);
    scope.cleanup().await;
}

#[tokio::test]
async fn match_globs_and_repository_groups_use_every_spelling() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("names-match").await;
    let id = &scope.id;
    let repo = format!("grp-{id}/app");
    let ids = fixture::load(
        &scope.docker,
        &[
            FixtureImage::new(&scope.label(), days_ago(3)).tag(&format!("{repo}:1")),
            FixtureImage::new(&scope.label(), days_ago(2)).tag(&format!("{repo}:2")),
            FixtureImage::new(&scope.label(), days_ago(1)).tag(&format!("{repo}:3")),
        ],
    )
    .await;
    // The familiar glob on one policy, the qualified one on a second: the first decides.
    let cfg = config(&format!(
        "policies:\n\
         \x20 - name: familiar\n    match:\n      labels: [\"{sel}\"]\n      references: [\"grp-{id}/*:1\"]\n    min_age: 0s\n\
         \x20 - name: qualified\n    match:\n      labels: [\"{sel}\"]\n      references: [\"{q}:*\"]\n    min_age: 0s\n    keep_last: 1\n    group_by: repository\n",
        sel = scope.selector(),
        q = qualified(&repo),
    ));
    let report = pass_now(&engine, &cfg, true).await;
    let first = decision(&report, &ids[0]);
    assert_eq!(first.policy.as_deref(), Some("familiar"), "{first:?}");
    assert_eq!(first.action, Action::Delete);
    let older = decision(&report, &ids[1]);
    assert_eq!(older.policy.as_deref(), Some("qualified"), "{older:?}");
    match &older.reason {
        Reason::BeyondKeepLast { group, .. } => {
            assert_eq!(&**group, repo.as_str(), "familiar group name");
        }
        other => panic!("expected beyond keep_last, got {other:?}"),
    }
    assert!(matches!(
        decision(&report, &ids[2]).reason,
        Reason::AmongNewest { .. }
    ));
    scope.cleanup().await;
}

/// A classic build's last step kept by a protect label: the steps below it survive. A classic
/// build, because it links images to parents on every engine (the containerd image store
/// keeps no parent link of a loaded image).
#[tokio::test]
async fn a_kept_childs_parent_survives_a_pass() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("names-parent").await;
    let (_, base) = base_image(&scope).await;
    let dockerfile = format!(
        "FROM {base}\nLABEL {TEST_LABEL}={}\nRUN echo parent > /p\nLABEL stagesweep.keep=true\n",
        scope.id
    );
    let files = [("Dockerfile", dockerfile.as_bytes(), 0o644)];
    let child = &build_classic(&scope.docker, &files, &scope.tag("child")).await;
    let links = chain(&scope.docker, child).await;
    let parent = &links[1];
    let listed = engine.list_images().await.expect("list");
    let c = listed
        .iter()
        .find(|i| i.id == **child)
        .expect("child listed");
    assert_eq!(
        c.parent_id.map(|p| p.to_string()).as_ref(),
        Some(parent),
        "the engine reports the parent (Podman as bare hex)"
    );
    let cfg = config(&format!(
        "protect:\n  labels: [stagesweep.keep=true]\n\
         policies:\n  - name: test\n    match:\n      labels: [\"{}\"]\n    min_age: 0s\n",
        scope.selector()
    ));
    let report = pass_now(&engine, &cfg, false).await;
    let d = decision(&report, parent);
    assert!(matches!(d.reason, Reason::ParentOfKept { .. }), "{d:?}");
    assert!(present(&engine, parent).await, "the parent survives");
    assert!(present(&engine, child).await);
    assert_eq!(report.summary.failed, 0);
    scope.cleanup().await;
}

#[tokio::test]
async fn a_multi_tag_image_deleted_by_id_is_a_conflict() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("names-multitag").await;
    let ids = fixture::load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), days_ago(1))
            .tag(&scope.tag("a"))
            .tag(&scope.tag("b"))],
    )
    .await;
    // Docker answers 409 (referenced in multiple repositories), Podman 500 (more than one
    // tag): both are the daemon refusing, never a failure of the plan.
    match engine.remove_image(&ids[0]).await {
        Err(EngineError::Conflict(msg)) => {
            let why = match test_engine() {
                TestEngine::Docker => "referenced in multiple repositories",
                TestEngine::Podman => "more than one tag",
            };
            assert!(msg.contains(why), "{msg}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(present(&engine, &ids[0]).await);
    scope.cleanup().await;
}
