//! Locks fail closed: when the host lock's or the build lock's directory cannot be created,
//! `prune` stops with exit 5 and deletes nothing (another stagesweep, or the builds of this
//! host, may use a lock at that path); `builds.lock: false` is the explicit way out for a
//! host where nothing builds. Against the fake Engine API (recorded answers of Docker 20.10),
//! which records every DELETE.

use crate::support;

use std::path::Path;

use support::cli::with_config;
use support::fake_api::{FakeApi, Recorded};

/// One policy deleting every image, whatever its age.
const ALL_IMAGES: &str =
    "policies:\n  - name: all\n    match: { all_images: true }\n    min_age: 0s\n";

/// The recorded Docker 20.10, its clock set to now and without its containers: the policy
/// then deletes its images.
fn engine() -> FakeApi {
    let mut rec = Recorded::load("1.41");
    rec.info["SystemTime"] = serde_json::Value::String(chrono::Utc::now().to_rfc3339());
    rec.containers = serde_json::json!([]);
    FakeApi::start(rec)
}

/// `prune` with `config` against `api`, from a blocking thread (the fake answers on this
/// runtime): its exit code and stderr.
async fn prune(api: &FakeApi, config: &Path) -> (i32, String) {
    let mut cmd = with_config(config);
    cmd.args(["prune", "--no-wait"])
        .env("DOCKER_HOST", &api.host);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("prune runs"))
        .await
        .expect("joined");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().expect("exits"), stderr)
}

fn deletes(api: &FakeApi) -> Vec<String> {
    (api.requests().into_iter())
        .filter(|r| r.starts_with("DELETE"))
        .collect()
}

/// A configuration whose `lock_file` and `builds` section are as given.
fn config(dir: &Path, host_lock: &Path, builds: &str) -> std::path::PathBuf {
    let path = dir.join("config.yaml");
    let text = format!(
        "history:\n  enabled: false\nlock_file: {}\nbuilds:\n{builds}{ALL_IMAGES}",
        host_lock.display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_directory_that_cannot_be_created_stops_prune_with_5_and_nothing_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("a file where a directory should be");
    let nowhere = blocker.join("run");
    let here = dir.path().join("run");
    let cases = [
        // The host lock's directory cannot be made.
        (
            nowhere.join("stagesweep.lock"),
            format!("  lock_file: {}\n", here.join("builds.lock").display()),
            "cannot create the lock directory",
        ),
        // The build lock's directory cannot be made.
        (
            here.join("stagesweep.lock"),
            format!("  lock_file: {}\n", nowhere.join("builds.lock").display()),
            "cannot create the build lock directory",
        ),
    ];
    for (host_lock, builds, message) in cases {
        let api = engine();
        let (code, stderr) = prune(&api, &config(dir.path(), &host_lock, &builds)).await;
        assert_eq!(code, 5, "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert!(stderr.contains("nothing was deleted"), "{stderr}");
        assert!(deletes(&api).is_empty(), "{:?}", deletes(&api));
    }
    // On a host where nothing builds, `builds.lock: false` goes without the build lock.
    let api = engine();
    let builds = format!(
        "  lock_file: {}\n  lock: false\n",
        nowhere.join("builds.lock").display()
    );
    let (code, stderr) = prune(&api, &config(dir.path(), &here.join("l"), &builds)).await;
    assert!(code == 0 || code == 1, "{stderr}");
    assert!(!deletes(&api).is_empty(), "it deleted: {stderr}");
}
