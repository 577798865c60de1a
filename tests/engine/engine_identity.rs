//! Delete exactly what was planned, against the real daemon: a saved plan applied after the
//! host changed (a tag moved, an image gained a tag), plan files for another engine or too
//! old, and ages the engine cannot tell. Each test touches only images it created.

use crate::support;

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use stagesweep::engine::Engine;
use support::cli::{self, entry, run_json};
use support::fixture::{FixtureImage, load};
use support::{Scope, engine_or_fail};

/// A config whose one policy selects the scope's images older than 1h.
fn config(scope: &Scope, dir: &tempfile::TempDir) -> PathBuf {
    cli::config_file(
        dir.path(),
        &format!(
            "policies:\n  - name: test\n    match:\n      labels: [\"{}\"]\n    min_age: 1h\n",
            scope.selector()
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_deletes_the_reviewed_plan_and_never_follows_a_moved_tag() {
    let scope = Scope::new("apply-moved").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let label = scope.label();
    let old = Utc::now() - chrono::Duration::hours(5);
    let builder = scope.tag("builder");
    let ids = load(
        &scope.docker,
        &[
            FixtureImage::new(&label, old).tag(&builder), // x: planned by its tag
            FixtureImage::new(&label, old),               // u: untagged, will gain a tag
            FixtureImage::new(&label, old),               // k: nothing happens to it
        ],
    )
    .await;
    let (x, u, k) = (&ids[0], &ids[1], &ids[2]);
    let config = config(&scope, &dir);
    let (code, plan, err) = run_json(cli::with_config(&config).args(["plan", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    for id in [x, u, k] {
        assert_eq!(entry(&plan, id)["action"], "delete");
    }
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).expect("save the plan");

    // Between review and apply: CI builds a new image with the same tag (the tag moves to
    // y), and someone tags u.
    let y = load(
        &scope.docker,
        &[FixtureImage::new(&label, Utc::now()).tag(&builder)],
    )
    .await;
    let keep = scope.tag("keep");
    let (repo, tag) = keep.rsplit_once(':').expect("repo:tag");
    let opts = bollard::query_parameters::TagImageOptionsBuilder::new()
        .repo(repo)
        .tag(tag)
        .build();
    scope
        .docker
        .tag_image(u, Some(opts))
        .await
        .expect("docker tag");

    let (code, done, err) = run_json(
        cli::with_config(&config)
            .arg("apply")
            .arg(&plan_file)
            .args(["--output", "json"]),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(entry(&done, x)["outcome"]["kind"], "deleted", "{done}");
    assert_eq!(entry(&done, k)["outcome"]["kind"], "deleted");
    let skipped = &entry(&done, u)["outcome"];
    assert_eq!(skipped["kind"], "skipped");
    assert_eq!(
        skipped["reason"],
        format!("tagged since the inventory: {keep}")
    );
    let left: Vec<String> = scope.images().await.into_iter().map(|i| i.id).collect();
    assert!(
        left.contains(&y[0]),
        "the image the tag moved to is untouched"
    );
    assert!(left.contains(u));
    assert!(!left.contains(x) && !left.contains(k));
    let y_now = scope
        .docker
        .inspect_image(&builder)
        .await
        .expect("tag still there");
    assert_eq!(y_now.id.as_deref(), Some(y[0].as_str()));
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_refuses_plans_for_another_engine_or_too_old_and_deletes_nothing() {
    let scope = Scope::new("apply-refuse").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let old = Utc::now() - chrono::Duration::hours(5);
    let ids = load(&scope.docker, &[FixtureImage::new(&scope.label(), old)]).await;
    let config = config(&scope, &dir);
    let (code, mut plan, err) =
        run_json(cli::with_config(&config).args(["plan", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(entry(&plan, &ids[0])["action"], "delete");
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).expect("save");

    let out = cli::with_config(&config)
        .arg("apply")
        .arg(&plan_file)
        .args(["--max-plan-age", "0s"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("more than --max-plan-age 0s (make a new plan"),
        "{err}"
    );

    plan["engine_id"] = Value::from("SOME:OTHER:ENGINE");
    std::fs::write(&plan_file, plan.to_string()).expect("save");
    let out = cli::with_config(&config)
        .arg("apply")
        .arg(&plan_file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the plan was made for engine SOME:OTHER:ENGINE but"),
        "{err}"
    );
    assert_eq!(scope.images().await.len(), 1, "nothing was deleted");
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn images_stamped_1970_are_kept_until_a_tag_time_tells_their_age() {
    let engine = engine_or_fail().await;
    let scope = Scope::new("epoch").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let epoch = Utc.timestamp_opt(0, 0).single().expect("epoch");
    let ids = load(
        &scope.docker,
        &[
            FixtureImage::new(&scope.label(), epoch),
            FixtureImage::new(&scope.label(), epoch),
        ],
    )
    .await;
    // Tagged just now (`docker tag`): the engine records the tag time, which dates it.
    let tagged = scope.tag("reproducible");
    let (repo, tag) = tagged.rsplit_once(':').expect("repo:tag");
    let opts = bollard::query_parameters::TagImageOptionsBuilder::new()
        .repo(repo)
        .tag(tag)
        .build();
    scope
        .docker
        .tag_image(&ids[1], Some(opts))
        .await
        .expect("docker tag");
    let state = engine.inspect_image(&ids[1]).await.expect("inspect");
    let since = Utc::now() - state.last_tagged.expect("a tag time after docker tag");
    assert!(since < chrono::Duration::minutes(5), "{state:?}");

    let config = config(&scope, &dir);
    let (code, plan, err) = run_json(cli::with_config(&config).args(["plan", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    let unknown = entry(&plan, &ids[0]);
    assert_eq!(unknown["action"], "keep");
    assert_eq!(unknown["reason"]["kind"], "unknown_age", "{unknown}");
    assert_eq!(unknown["age_secs"], Value::Null);
    let dated = entry(&plan, &ids[1]);
    assert_eq!(dated["action"], "keep");
    assert_eq!(dated["reason"]["kind"], "younger_than_min_age", "{dated}");
    assert!(dated["last_tagged"].is_string(), "{dated}");
    let (code, _, err) = run_json(cli::with_config(&config).args(["prune", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(scope.images().await.len(), 2, "nothing was deleted");
    scope.cleanup().await;
}
