//! `stagesweep du` against a real engine: images of three projects (one deletable, one in
//! use, one too young) and, where the engine has BuildKit, a build cache; grouped by the
//! `project` label, the groups' bytes, the shared line and the build cache line add up to
//! what the engine's data usage says it stores (`LayersSize` plus the build cache records
//! no image shares), and each group's bytes are split by what a pass would do now.
//!
//! Runs on every engine. Podman answers `LayersSize: 0` whatever it stores and keeps no
//! BuildKit cache: there `engine_total_bytes` is null and the lines add up to their own
//! total. The build runs under `engine_cache::SERIAL`: those tests prune the whole cache.

use crate::support;

use chrono::Utc;
use serde_json::Value;
use stagesweep::engine::Engine;
use support::fixture::{FixtureImage, load};
use support::{Scope, cli, create_container, engine_or_fail, matrix};

/// What the engine's data usage says it stores: its layers' total and the private records.
async fn engine_total() -> Option<u64> {
    let usage = engine_or_fail()
        .await
        .data_usage()
        .await
        .expect("disk usage");
    let cache: u64 = (usage.build_cache.unwrap_or_default().iter())
        .filter(|r| !r.shared)
        .map(|r| r.size)
        .sum();
    Some(usage.layers_size? + cache)
}

fn row<'a>(doc: &'a Value, group: &str) -> &'a Value {
    (doc["groups"].as_array().expect("groups").iter())
        .find(|g| g["group"] == group)
        .unwrap_or_else(|| panic!("no group {group} in {doc:#}"))
}

fn bytes(row: &Value, field: &str) -> u64 {
    row[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {row}"))
}

/// Images of three projects under the scope's label: `a` (two old ones, which the config's
/// policy deletes), `b` (old, in use by a container), `c` (10 minutes old: kept); then, where
/// the engine has BuildKit, a build (holding `engine_cache::SERIAL` until the guard drops).
async fn world(
    scope: &Scope,
    project: &dyn Fn(&str) -> String,
) -> (Vec<String>, Option<tokio::sync::MutexGuard<'static, ()>>) {
    let label = scope.label();
    let now = Utc::now();
    let image = |p: &str, age: chrono::Duration, kib: usize| {
        FixtureImage::new(&label, now - age)
            .label("project", &project(p))
            .layer_bytes(kib * 1024)
    };
    let hours = chrono::Duration::hours;
    let ids = load(
        &scope.docker,
        &[
            image("a", hours(5), 64),
            image("a", hours(4), 32),
            image("b", hours(5), 16).tag(&scope.tag("b")),
            image("c", chrono::Duration::minutes(10), 8),
        ],
    )
    .await;
    create_container(scope, &ids[2]).await;
    let serial = if matrix::engine().buildkit() {
        let serial = crate::engine_cache::SERIAL.lock().await;
        crate::engine_cache::build(scope, "");
        Some(serial)
    } else {
        None
    };
    (ids, serial)
}

/// The policy deletes the scope's images older than 1h; a build cache rule every record (no
/// history: `cli::config_file` turns it off).
fn config(scope: &Scope, dir: &tempfile::TempDir) -> std::path::PathBuf {
    cli::config_file(
        dir.path(),
        &format!(
            "policies:\n  - name: projects\n    match:\n      labels: [\"{}\"]\n    min_age: 1h\n\
             build_cache:\n  - name: all\n    types: [regular, exec.cachemount, source.local]\n    unused_for: 0s\n",
            scope.selector()
        ),
    )
}

/// `du --by project --output json`; when the engine tells its total and it did not change
/// while du ran (other tests share the engine), du's total is that total.
async fn du_json(config: &std::path::Path) -> Value {
    let mut doc = Value::Null;
    for _ in 0..5 {
        let before = engine_total().await;
        let out = cli::with_config(config)
            .args(["du", "--by", "project", "--output", "json"])
            .output()
            .expect("runs");
        doc = cli::json_of(&out);
        // du's own disk usage request may have met another test's deletion and given up (a
        // note, no total): ask again.
        let gave_up = (doc["notes"].as_array().into_iter().flatten()).any(|n| {
            n.as_str()
                .is_some_and(|n| n.contains("disk usage could not be read"))
        });
        if engine_total().await == before && !gave_up {
            if let Some(total) = before {
                assert_eq!(doc["total_bytes"], total, "{doc:#}");
            }
            break;
        }
    }
    doc
}

#[tokio::test(flavor = "multi_thread")]
async fn du_by_project_adds_up_to_the_engines_total_and_says_what_is_reclaimable() {
    let scope = Scope::new("du").await;
    let project = |p: &str| format!("{p}-{}", scope.id);
    let (ids, serial) = world(&scope, &project).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(&scope, &dir);
    let doc = du_json(&config).await;
    let groups = doc["groups"].as_array().expect("groups");
    let sum: u64 = groups.iter().map(|g| bytes(g, "bytes")).sum();
    assert_eq!(doc["total_bytes"], sum, "the lines add up: {doc:#}");
    // Podman 4 answers `LayersSize: 0` (not told: null); Podman 5 and Docker tell it.
    let podman = matrix::engine().family() == support::TestEngine::Podman;
    if !(podman && doc["engine_total_bytes"] == Value::Null) {
        assert_eq!(doc["engine_total_bytes"], doc["total_bytes"], "{doc:#}");
    }
    for g in groups {
        let states: u64 = ["reclaimable", "pressure", "protected", "kept"]
            .iter()
            .map(|s| bytes(g, &format!("{s}_bytes")))
            .sum();
        assert_eq!(states, bytes(g, "bytes"), "{g}");
    }
    let a = row(&doc, &project("a"));
    assert_eq!(a["count"], 2);
    assert!(bytes(a, "bytes") >= 96 * 1024, "{a}");
    assert_eq!(bytes(a, "reclaimable_bytes"), bytes(a, "bytes"), "old: {a}");
    let b = row(&doc, &project("b"));
    assert!(bytes(b, "bytes") >= 16 * 1024, "{b}");
    assert_eq!(
        bytes(b, "protected_bytes"),
        bytes(b, "bytes"),
        "in use: {b}"
    );
    let c = row(&doc, &project("c"));
    assert_eq!(bytes(c, "kept_bytes"), bytes(c, "bytes"), "young: {c}");
    if serial.is_some() {
        let cache = row(&doc, "build cache");
        assert!(
            bytes(cache, "reclaimable_bytes") >= 256 * 1024,
            "the builder's RUN: {cache}"
        );
    } else {
        assert!(groups.iter().all(|g| g["kind"] != "build_cache"), "{doc:#}");
    }
    let built = usize::from(serial.is_some());
    assert_eq!(
        scope.images().await.len(),
        ids.len() + built,
        "du deletes nothing"
    );

    let text = cli::with_config(&config)
        .args(["du", "--by", "project", "--top", "2"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("RECLAIMABLE") && text.contains("(other)"),
        "{text}"
    );
    assert!(text.contains("counted once"), "{text}");
    drop(serial);
    scope.cleanup().await;
}
