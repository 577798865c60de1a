//! Delete exactly what was planned, against the real daemon: a saved plan applied after the
//! host changed (a tag moved, an image gained a tag), plan files for another engine or too
//! old, and ages the engine cannot tell. Each test touches only images it created.

use crate::support;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use stagesweep::engine::Engine;
use support::cli::{self, entry, run_json};
use support::fixture::{FixtureImage, load};
use support::gate_proxy::GateProxy;
use support::images::{base_image, build_classic};
use support::matrix;
use support::{Scope, chain, create_container, docker_host, engine_or_fail};

/// A config whose one policy selects the scope's images older than `min_age`.
fn config_aged(scope: &Scope, dir: &tempfile::TempDir, min_age: &str) -> PathBuf {
    cli::config_file(
        dir.path(),
        &format!(
            "policies:\n  - name: test\n    match:\n      labels: [\"{}\"]\n    min_age: {min_age}\n",
            scope.selector()
        ),
    )
}

/// A config whose one policy selects the scope's images older than 1h.
fn config(scope: &Scope, dir: &tempfile::TempDir) -> PathBuf {
    config_aged(scope, dir, "1h")
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
    // Any age: on the containerd image store the tagged x is as young as its load.
    let config = config_aged(&scope, &dir, "0s");
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
    // The new tag as the engine spells it (Podman: `docker.io/…`), and where tags come with
    // digests (the containerd image store, Podman), its digest too.
    let reason = skipped["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("tagged since the inventory: "),
        "{reason}"
    );
    assert!(reason.contains(keep.as_str()), "{reason}");
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

/// Two images stamped 1970, one tagged just now: the tag time dates it. Podman reports no tag
/// time (both stay of unknown age); the containerd image store dates the untagged one by its
/// load. All are kept.
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
    let dated = matrix::engine().reports_tag_times();
    if dated {
        let since = Utc::now() - state.last_tagged.expect("a tag time after docker tag");
        assert!(since < chrono::Duration::minutes(5), "{state:?}");
    } else {
        // Podman reports no tag time: both stay of unknown age, and kept.
        assert_eq!(state.last_tagged, None, "{state:?}");
    }

    let config = config(&scope, &dir);
    let (code, plan, err) = run_json(cli::with_config(&config).args(["plan", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    let unknown = entry(&plan, &ids[0]);
    assert_eq!(unknown["action"], "keep");
    if matrix::engine().dates_arrivals() {
        // The containerd image store dates the untagged image too: by its load.
        assert_eq!(
            unknown["reason"]["kind"], "younger_than_min_age",
            "{unknown}"
        );
        assert!(unknown["last_tagged"].is_string(), "{unknown}");
    } else {
        assert_eq!(unknown["reason"]["kind"], "unknown_age", "{unknown}");
        assert_eq!(unknown["age_secs"], Value::Null);
    }
    let tagged = entry(&plan, &ids[1]);
    assert_eq!(tagged["action"], "keep");
    if dated {
        assert_eq!(tagged["reason"]["kind"], "younger_than_min_age", "{tagged}");
        assert!(tagged["last_tagged"].is_string(), "{tagged}");
    } else {
        assert_eq!(tagged["reason"]["kind"], "unknown_age", "{tagged}");
    }
    let (code, _, err) = run_json(cli::with_config(&config).args(["prune", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(scope.images().await.len(), 2, "nothing was deleted");
    scope.cleanup().await;
}

/// A child born after the inventory keeps its planned parent, on every engine: Docker on
/// overlay2 refuses to delete a parent with children (409); the containerd image store and
/// Podman do not, and the executor lists the engine before each wave to find the child. The
/// child is a `docker commit` of the parent, made while a proxy holds stagesweep's first
/// DELETE (the plan is made by then).
#[tokio::test(flavor = "multi_thread")]
async fn a_child_born_after_the_inventory_keeps_its_planned_parent() {
    let scope = Scope::new("new-child").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, base) = base_image(&scope).await;
    let dockerfile = format!(
        "FROM {base}\nLABEL {}={} stage=builder\nRUN echo leaf > /leaf\n",
        support::TEST_LABEL,
        scope.id
    );
    let files = [("Dockerfile", dockerfile.as_bytes(), 0o644)];
    let leaf = build_classic(&scope.docker, &files, &scope.tag("leaf")).await;
    let parent = chain(&scope.docker, &leaf).await[1].clone();
    let proxy = GateProxy::start(&docker_host());
    let config = cli::config_file(
        dir.path(),
        &format!(
            "docker:\n  host: \"{}\"\npolicies:\n  - name: test\n    match:\n      labels: [\"{}\", stage=builder]\n    min_age: 0s\n",
            proxy.host,
            scope.selector()
        ),
    );
    let prune = tokio::spawn(async move {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stagesweep"))
            .args(["prune", "--output", "json", "--config"])
            .arg(&config)
            .env_remove("DOCKER_HOST")
            .kill_on_drop(true)
            .output()
            .await
            .expect("run prune");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
    });
    tokio::time::timeout(Duration::from_secs(120), proxy.delete_seen())
        .await
        .expect("stagesweep reaches its first deletion");
    // Another actor, right then: a container of the parent, committed, and removed again.
    let cid = create_container(&scope, &parent).await;
    let opts = bollard::query_parameters::CommitContainerOptionsBuilder::new()
        .container(&cid)
        .build();
    let child = (scope.docker)
        .commit_container(opts, bollard::models::ContainerConfig::default())
        .await
        .expect("docker commit")
        .id;
    let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::new().build();
    (scope.docker)
        .remove_container(&cid, Some(rm))
        .await
        .expect("docker rm");
    let listed = support::list_images(&scope.docker, Some(&scope.selector())).await;
    let child_of = |id: &str| {
        listed
            .iter()
            .find(|i| i.id.ends_with(id.trim_start_matches("sha256:")))
    };
    let reported_parent =
        child_of(&child).map(|i| i.parent_id.trim_start_matches("sha256:").to_owned());
    assert_eq!(
        reported_parent.as_deref(),
        Some(parent.trim_start_matches("sha256:")),
        "the commit builds on the parent"
    );
    proxy.open();
    let doc = tokio::time::timeout(Duration::from_secs(120), prune)
        .await
        .expect("prune finishes")
        .expect("prune task");
    assert_eq!(entry(&doc, &leaf)["outcome"]["kind"], "deleted", "{doc}");
    let kept = &entry(&doc, &parent)["outcome"];
    assert_eq!(kept["kind"], "skipped", "{doc}");
    let why = kept["reason"].as_str().expect("a reason");
    let want = if matrix::engine().refuses_parents_with_children() {
        "image has dependent child images"
    } else {
        "builds on it since the inventory"
    };
    assert!(why.contains(want), "{why}");
    let left = support::all_image_ids(&scope.docker).await;
    assert!(left.contains(&parent), "the parent stays");
    assert!(
        left.iter()
            .any(|i| i.ends_with(child.trim_start_matches("sha256:")))
    );
    scope.cleanup().await;
}

/// The engine's identity holds from one command to the next, on every engine of the matrix
/// (Podman answers `/info` with a new random `ID` on every call: stagesweep keys it on host
/// name and storage root instead): a second `prune` with the same history file (a temp
/// path of the test's) counts no gap for "another engine", and a plan made a moment ago
/// applies and deletes what it lists.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_pass_and_a_fresh_plan_see_the_same_engine() {
    let scope = Scope::new("same-engine").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let old = Utc::now() - chrono::Duration::hours(5);
    let ids = load(
        &scope.docker,
        &[
            FixtureImage::new(&scope.label(), old),
            FixtureImage::new(&scope.label(), old),
        ],
    )
    .await;
    let history = dir.path().join("state/history.json");
    std::fs::create_dir_all(history.parent().expect("a parent")).expect("state dir");
    // Nothing is old enough for the history passes: they only read and write the history.
    let config = cli::config_file(
        dir.path(),
        &format!(
            "policies:\n  - name: test\n    match:\n      labels: [\"{}\"]\n    min_age: 100d\n",
            scope.selector()
        ),
    )
    .into_os_string()
    .into_string()
    .expect("utf-8 path");
    let text = std::fs::read_to_string(&config).expect("read config");
    let text = text.replace(
        "history:\n  enabled: false\n",
        &format!("history:\n  enabled: true\n  path: {}\n", history.display()),
    );
    std::fs::write(&config, text).expect("write config");
    let engine_of = || {
        let saved =
            stagesweep::history::file::parse(&std::fs::read(&history).expect("the history file"))
                .expect("a valid history file");
        Value::from(saved.engine_id)
    };
    let mut seen = Vec::new();
    for pass in ["first", "second"] {
        let out = cli::with_config(std::path::Path::new(&config))
            .env("RUST_LOG", "warn")
            .args(["prune", "--output", "json"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{pass} prune: {stderr}");
        assert!(
            !stderr.contains("belongs to another engine"),
            "{pass} prune counted a gap: {stderr}"
        );
        seen.push(engine_of());
    }
    assert!(seen[0].as_str().is_some_and(|s| !s.is_empty()), "{seen:?}");
    assert_eq!(seen[0], seen[1], "one engine, one identity");

    // A plan of now applies: same engine, and it deletes what it lists.
    let aged = config_aged(&scope, &dir, "1h");
    let (code, plan, err) = run_json(cli::with_config(&aged).args(["plan", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).expect("save the plan");
    let (code, done, err) = run_json(
        cli::with_config(&aged)
            .arg("apply")
            .arg(&plan_file)
            .args(["--output", "json"]),
    );
    assert_eq!(code, 0, "{err}");
    for id in &ids {
        assert_eq!(entry(&done, id)["outcome"]["kind"], "deleted", "{done}");
    }
    assert!(
        scope.images().await.is_empty(),
        "apply deleted the plan's images"
    );
    scope.cleanup().await;
}
