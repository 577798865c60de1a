//! Whole passes (`run_pass`) against a real daemon: ages and retention, a real classic
//! multi-stage build, images in use, protected references, dry run, the untagged parents
//! of a deleted image.
//!
//! Each test's policy matches only its own unique label, so tests running side by side on
//! one daemon never decide about each other's images; assertions on the summary stick to
//! the counts that this policy alone drives.

use crate::support;

use chrono::{DateTime, Utc};
use stagesweep::config::Config;
use stagesweep::engine::Engine;
use stagesweep::engine::docker::DockerEngine;
use stagesweep::inventory::ImageId;
use stagesweep::plan::{Action, Reason};
use stagesweep::reference::familiar;
use support::fixture::{self, FixtureImage};
use support::images::{base_image, build_classic};
use support::matrix;
use support::passes::{self, decision, pass_now};
use support::{Scope, chain, create_container, engine_or_fail, reported};

const POLICY: &str = "test";

/// A config with one policy `test` matching `labels` plus `extra` policy keys
/// (indented for the policy mapping), and an optional top-level `protect:` block.
fn config(labels: &[String], extra: &str, protect: &str) -> Config {
    let labels = labels
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let yaml = format!(
        "{protect}policies:\n  - name: {POLICY}\n    match:\n      labels: [{labels}]\n{extra}"
    );
    passes::config(&yaml)
}

async fn present(engine: &DockerEngine) -> Vec<stagesweep::inventory::Image> {
    engine.list_images().await.expect("list images")
}

async fn ids_present(engine: &DockerEngine) -> Vec<String> {
    present(engine)
        .await
        .into_iter()
        .map(|i| i.id.to_string())
        .collect()
}

fn ago(hours: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::minutes(hours * 60)
}

/// Four independent images: 10 days, 5 days, 2 hours and 10 minutes old.
async fn aged_fixtures(scope: &Scope) -> Vec<String> {
    let created = [
        ago(240),
        ago(120),
        ago(2),
        Utc::now() - chrono::Duration::minutes(10),
    ];
    let images: Vec<_> = created
        .iter()
        .map(|c| FixtureImage::new(&scope.label(), *c).layer_bytes(4096))
        .collect();
    fixture::load(&scope.docker, &images).await
}

#[tokio::test]
async fn min_age_deletes_only_the_old_ones() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("prune-min-age").await;
    let ids = aged_fixtures(&scope).await;
    let report = pass_now(
        &engine,
        &config(&[scope.selector()], "    min_age: 1h\n", ""),
        false,
    )
    .await;

    for id in &ids[..3] {
        let d = decision(&report, id);
        assert_eq!(d.action, Action::Delete, "{d:?}");
        assert!(
            matches!(&d.reason, Reason::Matched { policy, .. } if &**policy == POLICY),
            "{d:?}"
        );
    }
    let young = decision(&report, &ids[3]);
    assert_eq!(young.action, Action::Keep);
    assert!(
        matches!(young.reason, Reason::YoungerThanMinAge { .. }),
        "{young:?}"
    );
    assert_eq!(report.summary.deleted, 3);
    assert_eq!(report.summary.failed, 0);
    assert_eq!(report.summary.deleted_by_policy.get(POLICY), Some(&3));

    let now = ids_present(&engine).await;
    assert!(ids[..3].iter().all(|id| !now.contains(id)), "old ones gone");
    assert!(now.contains(&ids[3]), "young one stays");
    scope.cleanup().await;
}

#[tokio::test]
async fn keep_last_keeps_the_two_newest() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("prune-keep-last").await;
    let ids = aged_fixtures(&scope).await;
    let cfg = config(
        &[scope.selector()],
        "    min_age: 0s\n    keep_last: 2\n",
        "",
    );
    let report = pass_now(&engine, &cfg, false).await;

    for id in &ids[..2] {
        let d = decision(&report, id);
        assert_eq!(d.action, Action::Delete, "{d:?}");
        assert!(
            matches!(d.reason, Reason::BeyondKeepLast { keep_last: 2, .. }),
            "{d:?}"
        );
    }
    for id in &ids[2..] {
        let d = decision(&report, id);
        assert_eq!(d.action, Action::Keep, "{d:?}");
        assert!(
            matches!(d.reason, Reason::AmongNewest { keep_last: 2, .. }),
            "{d:?}"
        );
    }
    assert_eq!(report.summary.deleted_by_policy.get(POLICY), Some(&2));
    let now = ids_present(&engine).await;
    assert!(ids[..2].iter().all(|id| !now.contains(id)));
    assert!(ids[2..].iter().all(|id| now.contains(id)));
    scope.cleanup().await;
}

#[tokio::test]
async fn classic_multi_stage_build_loses_its_builder_stage_only() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("prune-multistage").await;
    let (_, base) = base_image(&scope).await;
    let dockerfile = format!(
        "FROM {base} AS builder\n\
         LABEL stage=builder {}={}\n\
         RUN echo one > /one\n\
         RUN head -c 50000 /dev/urandom > /blob\n\
         COPY src.txt /src.txt\n\
         RUN cat /one /src.txt > /out\n\
         \n\
         FROM {base}\n\
         COPY --from=builder /out /out\n\
         RUN echo final > /final\n",
        support::TEST_LABEL,
        scope.id
    );
    let app = scope.tag("app");
    let final_id = build_classic(
        &scope.docker,
        &[
            ("Dockerfile", dockerfile.as_bytes(), 0o644),
            ("src.txt", b"source\n", 0o644),
        ],
        &app,
    )
    .await;
    let builder: Vec<String> = scope
        .images()
        .await
        .into_iter()
        .filter(|i| i.labels.get("stage").map(String::as_str) == Some("builder"))
        .map(|i| i.id)
        .collect();
    assert!(
        builder.len() >= 5,
        "LABEL, RUN, RUN, COPY, RUN: {builder:?}"
    );
    let final_chain = chain(&scope.docker, &final_id).await;
    assert!(final_chain.iter().all(|id| !builder.contains(id)));

    let cfg = config(
        &["stage=builder".to_owned(), scope.selector()],
        "    min_age: 0s\n",
        "",
    );
    let report = pass_now(&engine, &cfg, false).await;

    for id in &builder {
        let d = decision(&report, id);
        assert_eq!(d.action, Action::Delete, "{d:?}");
    }
    for id in &final_chain {
        assert_ne!(
            decision(&report, id).action,
            Action::Delete,
            "{id} is in the final image's history"
        );
    }
    assert_eq!(report.summary.deleted, builder.len());
    assert_eq!((report.summary.failed, report.summary.skipped), (0, 0));

    let now = present(&engine).await;
    assert!(
        builder.iter().all(|id| now.iter().all(|i| &i.id != id)),
        "every builder-stage image is gone"
    );
    assert!(
        final_chain.iter().all(|id| now.iter().any(|i| &i.id == id)),
        "the final image's history is intact"
    );
    let app_image = now.iter().find(|i| i.id == final_id).expect("final image");
    // Podman names images it builds through the Docker API `docker.io/…` (loaded ones
    // `localhost/…`): compare the familiar spelling.
    let familiar: Vec<&str> = app_image.references.iter().map(|r| familiar(r)).collect();
    assert_eq!(familiar, vec![app.as_str()]);
    scope.cleanup().await;
}

/// The image a container uses and its parent: a classic build's last step and the one
/// below, since a classic build links images to parents on every engine (the containerd
/// image store keeps no parent link of a loaded image).
#[tokio::test]
async fn image_used_by_a_created_container_survives_with_its_parents() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("prune-in-use").await;
    let (_, base) = base_image(&scope).await;
    let dockerfile = format!(
        "FROM {base}\nLABEL {}={}\nRUN echo used > /used\n",
        support::TEST_LABEL,
        scope.id
    );
    let files = [("Dockerfile", dockerfile.as_bytes(), 0o644)];
    let used = &build_classic(&scope.docker, &files, &scope.tag("used")).await;
    let parent = &chain(&scope.docker, used).await[1];
    let free =
        &fixture::load(&scope.docker, &[FixtureImage::new(&scope.label(), ago(46))]).await[0];
    let cid = create_container(&scope, used).await;
    let report = pass_now(
        &engine,
        &config(&[scope.selector()], "    min_age: 0s\n", ""),
        false,
    )
    .await;

    let d = decision(&report, used);
    assert_eq!(d.action, Action::Keep);
    match &d.reason {
        Reason::InUse { container, state } => {
            assert!(
                !container.is_empty() && cid.starts_with(container.as_str()),
                "{container} names {cid}"
            );
            assert_eq!(state, "created");
        }
        other => panic!("expected in use, got {other:?}"),
    }
    let p = decision(&report, parent);
    assert_eq!(p.action, Action::Keep);
    assert!(matches!(p.reason, Reason::ParentOfInUse { .. }), "{p:?}");
    assert!(
        report
            .summary
            .kept_by_reason
            .get("in_use")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    assert_eq!(decision(&report, free).action, Action::Delete);

    let now = ids_present(&engine).await;
    assert!(now.contains(used) && now.contains(parent));
    assert!(!now.contains(free));
    scope.cleanup().await;
}

#[tokio::test]
async fn protected_reference_keeps_both_references() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("prune-protect").await;
    let (keep, other) = (scope.tag("keep"), scope.tag("other"));
    let ids = fixture::load(
        &scope.docker,
        &[
            FixtureImage::new(&scope.label(), ago(48))
                .tag(&keep)
                .tag(&other),
            FixtureImage::new(&scope.label(), ago(48)).tag(&scope.tag("loose")),
        ],
    )
    .await;
    let pattern = format!("stagesweep-test/{}-keep:*", scope.id);
    let protect = format!("protect:\n  references: [\"{pattern}\"]\n");
    let report = pass_now(
        &engine,
        &config(&[scope.selector()], "    min_age: 0s\n", &protect),
        false,
    )
    .await;

    let d = decision(&report, &ids[0]);
    assert_eq!(d.action, Action::Keep);
    assert_eq!(d.reason, Reason::ProtectedReference { pattern });
    assert_eq!(decision(&report, &ids[1]).action, Action::Delete);

    let now = present(&engine).await;
    let kept = now
        .iter()
        .find(|i| i.id == ids[0])
        .expect("protected image stays");
    let mut refs = kept.references.clone();
    refs.sort();
    let mut want = vec![reported(&keep), reported(&other)];
    want.sort();
    assert_eq!(refs, want, "both references kept");
    assert!(now.iter().all(|i| i.id != ids[1]));
    scope.cleanup().await;
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("prune-dry-run").await;
    let ids = aged_fixtures(&scope).await;
    let tagged = fixture::load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), ago(48)).tag(&scope.tag("t"))],
    )
    .await;
    let before = present(&engine).await;
    let report = pass_now(
        &engine,
        &config(&[scope.selector()], "    min_age: 1h\n", ""),
        true,
    )
    .await;

    let planned = ids
        .iter()
        .chain(&tagged)
        .filter(|id| decision(&report, id).action == Action::Delete)
        .count();
    // On the containerd image store the tagged one is as young as its load.
    let want = if matrix::engine().dates_arrivals() {
        3
    } else {
        4
    };
    assert_eq!(planned, want, "the plan still says what would go");
    assert!(report.summary.dry_run);
    assert_eq!(report.summary.deleted, 0);
    let after = present(&engine).await;
    for id in ids.iter().chain(&tagged) {
        let b = before.iter().find(|i| &i.id == id).expect("present before");
        let a = after
            .iter()
            .find(|i| &i.id == id)
            .expect("present after a dry run");
        assert_eq!(a, b);
    }
    scope.cleanup().await;
}

/// `count` classic builds of an app on the scope's base (each final stage a chain of untagged
/// step images under the tagged app image). Returns the app image IDs, oldest build first.
async fn app_builds(scope: &Scope, base: &str, count: u32) -> Vec<String> {
    let mut apps = Vec::new();
    for n in 1..=count {
        let dockerfile = format!(
            "FROM {base}\n\
             RUN echo build {n} > /build\n\
             RUN head -c 40000 /dev/urandom > /deps\n\
             COPY app.txt /app.txt\n"
        );
        let id = build_classic(
            &scope.docker,
            &[
                ("Dockerfile", dockerfile.as_bytes(), 0o644),
                ("app.txt", format!("app {n}\n").as_bytes(), 0o644),
            ],
            &scope.tag(&format!("app{n}")),
        )
        .await;
        apps.push(id);
    }
    apps
}

#[tokio::test]
async fn a_deleted_image_takes_its_untagged_parents_and_nothing_else() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("prune-parents").await;
    let (base_id, _) = base_image(&scope).await;
    let apps = app_builds(&scope, &scope.tag("base"), 3).await;
    let chains: Vec<Vec<String>> = {
        let mut out = Vec::new();
        for app in &apps {
            let c = chain(&scope.docker, app).await;
            // app, COPY, RUN, RUN, then the base's own chain.
            assert!(c.len() >= 4 && c.contains(&base_id), "{c:?}");
            out.push(c);
        }
        out
    };
    let own = |c: &[String]| -> Vec<String> {
        c.iter().take_while(|id| **id != base_id).cloned().collect()
    };
    create_container(&scope, &apps[0]).await;
    let orphaned_before = orphans(&engine, &scope).await;
    // The newest build is kept; the first runs; the middle one goes, with its chain.
    let glob = format!("stagesweep-test/{}-app*", scope.id);
    let cfg = passes::config(&format!(
        "policies:\n  - name: {POLICY}\n    match:\n      references: [\"{glob}\"]\n      labels: [\"{}\"]\n    min_age: 0s\n    keep_last: 1\n",
        scope.selector()
    ));
    let report = pass_now(&engine, &cfg, false).await;
    let middle = own(&chains[1]);
    let d = decision(&report, &apps[1]);
    assert!(
        matches!(d.reason, Reason::BeyondKeepLast { rank: 2, .. }),
        "{d:?}"
    );
    for id in &middle[1..] {
        let d = decision(&report, id);
        assert_eq!(d.reason.kind(), "parent_of_deleted", "{id}: {d:?}");
        assert_eq!(d.policy.as_deref(), Some(POLICY));
    }
    assert_eq!(report.summary.deleted, middle.len(), "{:?}", report.summary);
    assert_eq!((report.summary.failed, report.summary.skipped), (0, 0));
    let now = ids_present(&engine).await;
    assert!(
        middle.iter().all(|id| !now.contains(id)),
        "the middle build's chain is gone"
    );
    for kept in [&chains[0], &chains[2]] {
        assert!(
            kept.iter().all(|id| now.contains(id)),
            "in use / newest: {kept:?}"
        );
    }
    assert_nothing_orphaned(&engine, &scope, &orphaned_before).await;
    scope.cleanup().await;
}

/// The scope's untagged images without a child. A builder may leave some before any pass
/// (Podman keeps a step image its build did not end up using); what matters is that a pass
/// leaves no new one behind.
async fn orphans(engine: &DockerEngine, scope: &Scope) -> Vec<ImageId> {
    let images = present(engine).await;
    let mine: Vec<ImageId> = (scope.images().await.into_iter())
        .map(|i| i.id.parse().expect("the engine gives valid IDs"))
        .collect();
    (images.iter())
        .filter(|i| mine.contains(&i.id) && i.references.is_empty())
        .filter(|i| !images.iter().any(|c| c.parent_id == Some(i.id)))
        .map(|i| i.id)
        .collect()
}

/// No untagged image of the scope is left without a child by the pass: nothing orphaned
/// that was not so before it (`before`).
async fn assert_nothing_orphaned(engine: &DockerEngine, scope: &Scope, before: &[ImageId]) {
    let new: Vec<ImageId> = (orphans(engine, scope).await.into_iter())
        .filter(|id| !before.contains(id))
        .collect();
    assert!(
        new.is_empty(),
        "untagged images left without a child: {new:?}"
    );
}

#[tokio::test]
async fn keep_last_three_keeps_the_three_newest_builds_and_the_old_one_in_use() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("prune-keep-3").await;
    let (base_id, _) = base_image(&scope).await;
    let apps = app_builds(&scope, &scope.tag("base"), 5).await;
    // The oldest build runs (a created container: in use all the same).
    create_container(&scope, &apps[0]).await;
    let orphaned_before = orphans(&engine, &scope).await;
    let second = chain(&scope.docker, &apps[1]).await;
    let glob = format!("stagesweep-test/{}-app*", scope.id);
    let cfg = passes::config(&format!(
        "policies:\n  - name: {POLICY}\n    match:\n      references: [\"{glob}\"]\n      labels: [\"{}\"]\n    min_age: 0s\n    keep_last: 3\n",
        scope.selector()
    ));
    let report = pass_now(&engine, &cfg, false).await;
    assert_eq!(decision(&report, &apps[0]).reason.kind(), "in_use");
    for (app, want) in [(&apps[4], 1), (&apps[3], 2), (&apps[2], 3)] {
        let d = decision(&report, app);
        assert!(
            matches!(d.reason, Reason::AmongNewest { keep_last: 3, rank, .. } if rank == want),
            "{d:?}"
        );
    }
    let d = decision(&report, &apps[1]);
    assert!(
        matches!(d.reason, Reason::BeyondKeepLast { rank: 4, .. }),
        "the in-use build takes no place: {d:?}"
    );
    let now = ids_present(&engine).await;
    assert!(
        second.len() >= 4
            && second
                .iter()
                .take_while(|id| **id != base_id)
                .all(|id| !now.contains(id)),
        "the second build goes, with its untagged parents"
    );
    for (i, app) in apps.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert!(now.contains(app), "build {} stays", i + 1);
    }
    assert_eq!((report.summary.failed, report.summary.skipped), (0, 0));
    assert_nothing_orphaned(&engine, &scope, &orphaned_before).await;
    scope.cleanup().await;
}
