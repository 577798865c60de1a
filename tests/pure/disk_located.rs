//! Which filesystem the disk watermarks measure, through the CLI against recorded engines
//! (`support::fake_api`): a remote engine (`tcp://`) without `disk.path` and an engine on
//! the containerd image store without containerd's root are refused with exit 2 naming the
//! key to set, never measured on the wrong disk; `check-config` says what is measured and
//! why.

use crate::support;

use std::path::Path;
use std::time::Duration;

use support::cli::{Finished, config_file, run_bounded};
use support::fake_api::{FakeApi, Recorded};

const LIMIT: Duration = Duration::from_secs(60);

/// A `disk_pressure` policy on the engine at `host`, plus `disk` keys.
fn pressure_config(dir: &Path, host: &str, disk: &str) -> std::path::PathBuf {
    config_file(
        dir,
        &format!(
            "docker:\n  host: {host}\n  timeout: 10s\npolicies:\n  - name: p\n    match:\n      \
             labels: [stagesweep.test=none]\n    when: disk_pressure\ndisk:\n  high: 85\n  low: 80\n{disk}"
        ),
    )
}

async fn plan(dir: &Path, host: &str, disk: &str) -> Finished {
    let config = pressure_config(dir, host, disk);
    run_bounded(&["plan", "--output", "json"], &config, LIMIT, "planned").await
}

#[tokio::test]
async fn a_remote_engine_without_disk_path_is_refused_naming_the_key() {
    let api = FakeApi::start_tcp(Recorded::load("1.41"));
    let dir = tempfile::tempdir().expect("temp dir");
    let out = plan(dir.path(), &api.host, "").await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let want = format!("disk.path: the engine at {} is remote", api.host);
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(out.stderr.contains("set disk.path"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing planned: {}", out.stdout);
    // With disk.path it measures that path, remote or not.
    let out = plan(
        dir.path(),
        &api.host,
        &format!("  path: {}\n", dir.path().display()),
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(doc["disk"]["source"], dir.path().display().to_string());
}

#[tokio::test]
async fn the_containerd_store_is_measured_at_containerds_root_or_refused() {
    // Docker 29 on the containerd image store (DriverStatus: io.containerd.snapshotter.v1).
    let api = FakeApi::start(Recorded::load("1.52"));
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("containerd");
    std::fs::create_dir(&root).expect("an empty containerd root");
    let key = format!("  containerd_root: {}\n", root.display());
    let out = plan(dir.path(), &api.host, &key).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let want = format!(
        "disk.containerd_root: the engine uses the containerd image store, whose images live \
         under containerd's root, not its data root; {} (disk.containerd_root) holds no \
         io.containerd.content.v1.content",
        root.display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    // Not the data root (/var/lib/docker in the recording), which may well exist here.
    assert!(!out.stderr.contains("/var/lib/docker"), "{}", out.stderr);
    std::fs::create_dir(root.join("io.containerd.content.v1.content")).expect("content store");
    let out = plan(dir.path(), &api.host, &key).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(doc["disk"]["source"], root.display().to_string());
    // check-config names the filesystem and why.
    let config = pressure_config(dir.path(), &api.host, &key);
    let out = run_bounded(&["check-config"], &config, LIMIT, "checked").await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let line = format!(
        "disk: the watermarks measure {} (containerd's root, disk.containerd_root: the engine \
         uses the containerd image store)",
        root.display()
    );
    assert!(out.stdout.lines().any(|l| l == line), "{}", out.stdout);
}

#[tokio::test]
async fn check_config_fails_on_a_disk_it_must_not_measure() {
    let api = FakeApi::start_tcp(Recorded::load("1.41"));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = pressure_config(dir.path(), &api.host, "");
    let out = run_bounded(&["check-config"], &config, LIMIT, "checked").await;
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.lines().any(|l| l == "ok"), "{}", out.stdout);
    assert!(
        out.stderr.contains("disk.path: the engine at"),
        "{}",
        out.stderr
    );
}
