//! The binary against a real engine (the private dockerd of scripts/test.sh): JSON output,
//! dry run, plan listing and the host lock. Each test touches only images it created.

use crate::support;

use chrono::Utc;
use serde_json::Value;
use stagesweep::locks::HostLock;
use support::fixture::{FixtureImage, load};
use support::matrix;
use support::{Scope, cli};

/// Two old images and one young one, all with the scope's label; a config selecting them
/// (older than 1h). On the containerd image store the tagged old one is young too: the
/// engine dates it by its load ([`young`]).
async fn world(
    scope: &Scope,
    dir: &tempfile::TempDir,
) -> (Vec<String>, std::path::PathBuf, std::path::PathBuf) {
    let label = scope.label();
    let now = Utc::now();
    let ids = load(
        &scope.docker,
        &[
            FixtureImage::new(&label, now - chrono::Duration::hours(5)),
            FixtureImage::new(&label, now - chrono::Duration::hours(3)).tag(&scope.tag("old")),
            FixtureImage::new(&label, now - chrono::Duration::minutes(10)),
        ],
    )
    .await;
    let config = cli::config_file(
        dir.path(),
        &format!(
            "policies:\n  - name: test\n    match:\n      labels: [\"{}\"]\n    min_age: 1h\n",
            scope.selector()
        ),
    );
    (ids, config, dir.path().join("run/stagesweep.lock"))
}

/// Which of the world's images a pass keeps as younger than 1h.
fn young(ids: &[String]) -> Vec<String> {
    if matrix::engine().dates_arrivals() {
        vec![ids[1].clone(), ids[2].clone()]
    } else {
        vec![ids[2].clone()]
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_json_reports_every_decision_and_deletes_only_old_matches() {
    let scope = Scope::new("cli-json").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (ids, config, _lock) = world(&scope, &dir).await;

    let dry = cli::with_config(&config)
        .args(["prune", "--dry-run", "--output", "json"])
        .output()
        .expect("runs");
    let doc = cli::json_of(&dry);
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["summary"]["deleted"], 0);
    assert_eq!(scope.images().await.len(), 3, "a dry run changes nothing");

    let out = cli::with_config(&config)
        .args(["prune", "--output", "json"])
        .output()
        .expect("runs");
    let doc = cli::json_of(&out);
    let young = young(&ids);
    assert_eq!(doc["summary"]["deleted"], 3 - young.len());
    assert_eq!(doc["summary"]["failed"], 0);
    let mine: Vec<&Value> = doc["images"]
        .as_array()
        .expect("images array")
        .iter()
        .filter(|i| ids.iter().any(|id| i["id"] == id.as_str()))
        .collect();
    assert_eq!(mine.len(), 3);
    for image in mine {
        let young = young.iter().any(|y| image["id"] == y.as_str());
        let want = if young { "keep" } else { "delete" };
        assert_eq!(image["action"], want, "{image}");
        assert_eq!(image["policy"], "test");
        if young {
            assert_eq!(image["reason"]["kind"], "younger_than_min_age");
            assert!(image["outcome"].is_null());
        } else {
            assert_eq!(image["outcome"]["kind"], "deleted");
            assert!(
                image["reason_text"]
                    .as_str()
                    .expect("text")
                    .contains("past min_age 1h")
            );
        }
    }
    let mut left: Vec<String> = scope.images().await.into_iter().map(|i| i.id).collect();
    left.sort();
    let mut want = young;
    want.sort();
    assert_eq!(left, want);
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_lists_keep_decisions_and_changes_nothing() {
    let scope = Scope::new("cli-plan").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (ids, config, _lock) = world(&scope, &dir).await;
    let out = cli::with_config(&config)
        .arg("plan")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let young_id = &ids[2]["sha256:".len().."sha256:".len() + 12];
    let line = text
        .lines()
        .find(|l| l.contains(young_id))
        .expect("young image listed");
    assert!(line.contains("younger than min_age 1h"), "{line}");
    assert!(text.contains("dry run: would delete"), "{text}");

    // --only keep: the young image, not the old ones; the summary still counts all.
    let short = |id: &String| id["sha256:".len().."sha256:".len() + 12].to_owned();
    let only = cli::with_config(&config)
        .args(["plan", "--only", "keep"])
        .output()
        .expect("runs");
    let text = String::from_utf8(only.stdout).expect("utf-8");
    let young = young(&ids);
    for id in &ids {
        assert_eq!(
            text.contains(&short(id)),
            young.contains(id),
            "{id}: {text}"
        );
    }
    assert!(text.contains("dry run: would delete"), "{text}");
    let only = cli::with_config(&config)
        .args(["plan", "--only", "delete,untouched", "--output", "json"])
        .output()
        .expect("runs");
    let doc: Value = serde_json::from_slice(&only.stdout).expect("stdout is one JSON document");
    let actions: Vec<&str> = doc["images"]
        .as_array()
        .expect("images array")
        .iter()
        .map(|i| i["action"].as_str().expect("action"))
        .collect();
    assert!(actions.contains(&"delete"), "{actions:?}");
    assert!(!actions.contains(&"keep"), "{actions:?}");
    assert!(doc["summary"]["kept"].as_u64().expect("kept") >= 1);
    assert_eq!(scope.images().await.len(), 3);
    scope.cleanup().await;
}

/// `stagesweep … | true` on a real engine: `plan` and `prune` print into a pipe whose reader
/// is gone, exit 0 without a panic, and the prune still deletes what it planned.
#[tokio::test(flavor = "multi_thread")]
async fn plan_and_prune_exit_quietly_when_stdout_is_closed() {
    let scope = Scope::new("cli-closed").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (ids, config, _lock) = world(&scope, &dir).await;
    let host = std::env::var("DOCKER_HOST").expect("DOCKER_HOST names the test engine");
    let limit = std::time::Duration::from_secs(120);
    for args in [&["plan"][..], &["plan", "--output", "json"], &["prune"]] {
        let out = cli::run_closed_stdout(args, Some(&config), Some(&host), limit).await;
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
    let mut left: Vec<String> = scope.images().await.into_iter().map(|i| i.id).collect();
    left.sort();
    let mut want = young(&ids);
    want.sort();
    assert_eq!(left, want, "the prune deleted the old images");
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_wait_exits_4_while_another_pass_holds_the_lock() {
    let scope = Scope::new("cli-lock").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_ids, config, lock) = world(&scope, &dir).await;
    let held = HostLock::acquire(lock.clone(), false)
        .await
        .expect("take the lock");
    cli::with_config(&config)
        .args(["prune", "--no-wait"])
        .assert()
        .code(4)
        .stderr(predicates::str::contains("holds the lock"));
    assert_eq!(
        scope.images().await.len(),
        3,
        "nothing deleted while locked"
    );
    drop(held);
    cli::with_config(&config)
        .args(["prune", "--no-wait"])
        .assert()
        .success();
    let young = young(&[String::new(), String::new(), String::new()]);
    assert_eq!(scope.images().await.len(), young.len());
    scope.cleanup().await;
}
