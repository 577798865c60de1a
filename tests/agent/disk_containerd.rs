//! Disk watermarks on Docker 28.5 with the containerd image store, whose images live under
//! containerd's root (not the data root the API reports): a daemon of the test's own
//! (`scripts/engines/docker28.sh`, after `scripts/engines/fetch.sh`) with containerd's root
//! on a small tmpfs, filled over `high` with BuildKit-built images. Deleting such an image
//! frees less than its size (the build cache keeps its layers): the pass measures between
//! waves and evicts until the filesystem is at `low`, beyond what the estimate planned, and
//! reports the filesystem's figure. The same engine reached over `tcp://` without
//! `disk.path` is refused (exit 2) before anything is measured or deleted.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use serde_json::Value;
use stagesweep::pass::disk::statvfs;
use support::cli::{self, config_file};
use support::daemon::OwnDaemon;
use support::images::{build_classic, busybox};
use support::tcp_proxy::TcpProxy;

/// BuildKit images, each with its own layer of this many random bytes.
const IMAGES: usize = 8;
const LAYER_BYTES: usize = 6_000_000;

/// A percentage rounded down, within 0..=100.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped to 0..=100 first
fn whole_percent(p: f64) -> u8 {
    p.floor().clamp(0.0, 100.0) as u8
}

/// A busybox base (classic build), then `IMAGES` BuildKit builds on it, oldest first, each
/// labelled `label` with a unique random layer.
async fn fill(daemon: &OwnDaemon, docker: &Docker, label: &str) {
    let bb = busybox();
    let base = "ss-base:1";
    build_classic(
        docker,
        &[
            (
                "Dockerfile",
                b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
                0o644,
            ),
            ("busybox", &bb, 0o755),
        ],
        base,
    )
    .await;
    for k in 0..IMAGES {
        let ctx = tempfile::tempdir().expect("build context");
        let dockerfile = format!(
            "FROM {base}\nRUN echo {k} > /k && head -c {LAYER_BYTES} /dev/urandom > /blob\nLABEL stagesweep.test={label}\n"
        );
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
        let out = daemon
            .cli()
            .args([
                "buildx",
                "build",
                "--network=none",
                "--load",
                "--progress=plain",
            ])
            .args(["-t", &format!("ss-app{k}:1")])
            .arg(ctx.path())
            .output()
            .expect("run docker buildx build");
        assert!(
            out.status.success(),
            "BuildKit build {k} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Distinct creation seconds: least recently used is the oldest build.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

/// Wait until `/system/df` answers: right after a BuildKit build the containerd store
/// sometimes answers 404 for a snapshot view (scripts/engines/README.md).
async fn df_settled(docker: &Docker) {
    for _ in 0..20 {
        if docker.df(None).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn pressure_yaml(label: &str, high: u8, low: u8, disk: &str) -> String {
    format!(
        "policies:\n  - name: pressure\n    match:\n      labels: [stagesweep.test={label}]\n    \
         min_age: 0s\n    when: disk_pressure\ndisk:\n  high: {high}\n  low: {low}\n{disk}"
    )
}

fn containerd_root(daemon: &OwnDaemon) -> PathBuf {
    daemon.containerd_root.clone().expect("a containerd root")
}

/// The summary's bytes are the filesystem's figure (within 10 % of `fs_change`, the change
/// seen here), not the estimate, which is off by far more here: the build cache keeps the
/// layers, and says it holds some. Returns the figures for the log.
fn honest_bytes(s: &Value, root: &Path, fs_change: u64) -> String {
    let reported = s["reclaimed_bytes"].as_u64().expect("bytes");
    assert_eq!(s["measured_on"], root.display().to_string());
    assert_eq!(s["measured_bytes"].as_u64(), Some(reported));
    // Off by more than a tenth of `b`.
    let off = |a: u64, b: u64| a.abs_diff(b).saturating_mul(10) > b;
    assert!(!off(reported, fs_change), "{reported} vs {fs_change}");
    let estimated = s["estimated_bytes"].as_u64().expect("estimate");
    assert!(
        off(estimated, fs_change),
        "{estimated} vs {fs_change}: the test would not tell"
    );
    let held = s["held_by_build_cache_bytes"].as_u64();
    assert!(held > Some(0), "{s:#}");
    format!(
        "reclaimed {reported} B (measured), the filesystem gained {fs_change} B, estimate \
         {estimated} B, held by the build cache {} B",
        held.unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn on_the_containerd_store_eviction_measures_containerds_root_until_low() {
    let daemon = OwnDaemon::start_docker28_containerd("d28", "160m");
    let root = containerd_root(&daemon);
    let docker = daemon.client_with_timeout(120).await;
    let label = format!("disk28-{}", std::process::id());
    fill(&daemon, &docker, &label).await;
    df_settled(&docker).await;
    let dir = tempfile::tempdir().expect("temp dir");

    // Watermarks around what the disk holds now: over high; low about two images' worth of
    // estimate below it (the estimate counts content and snapshot, the build cache keeps
    // the snapshot: each deletion frees about half of its estimate).
    let before = statvfs(&root).expect("statvfs");
    let used = before.used_ratio() * 100.0;
    let (high, low) = (whole_percent(used - 1.0), whole_percent(used - 9.0));
    assert!(
        low > 10,
        "the images should fill most of the tmpfs: {used:.1}%"
    );

    // Without containerd's root the store is not found: refused, naming the key.
    let wrong = format!("  containerd_root: {}\n", daemon.dir.join("data").display());
    let config = config_file(dir.path(), &pressure_yaml(&label, high, low, &wrong));
    let out = cli::with_config(&config)
        .arg("plan")
        .env("DOCKER_HOST", &daemon.host)
        .output()
        .expect("run plan");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("disk.containerd_root: the engine uses the containerd image store"),
        "{stderr}"
    );

    let key = format!("  containerd_root: {}\n", root.display());
    let config = config_file(dir.path(), &pressure_yaml(&label, high, low, &key));
    let (doc, _) = cli::prune_json(&config, &daemon.host, "warn");
    let after = statvfs(&root).expect("statvfs");
    let e = &doc["eviction"];
    assert_eq!(e["measured"], root.display().to_string(), "{e:#}");
    let outcomes: Vec<String> = (doc["images"].as_array().expect("images").iter())
        .filter(|i| !i["outcome"].is_null())
        .map(|i| {
            format!(
                "{} {} {}",
                i["references"], i["reason"]["kind"], i["outcome"]
            )
        })
        .collect();
    assert_eq!(e["end"]["kind"], "low_reached", "{e:#}\n{outcomes:#?}");
    let waves = e["waves"].as_array().expect("waves");
    let (taken, estimated) = (e["taken"].as_u64(), e["estimated"].as_u64());
    assert!(
        waves.len() >= 2 && taken > estimated,
        "the estimate fell short: {e:#}"
    );
    let now = after.used_ratio() * 100.0;
    assert!(
        now <= f64::from(low),
        "{used:.1}% → {now:.1}%, low {low}: {e:#}"
    );
    // Least recently used first: the oldest builds went, the newest stayed.
    let deleted = doc["summary"]["deleted"].as_u64().expect("deleted");
    assert_eq!(Some(deleted), taken, "{doc:#}");
    let present = |k: usize| {
        let docker = &docker;
        async move { docker.inspect_image(&format!("ss-app{k}:1")).await.is_ok() }
    };
    for k in 0..IMAGES {
        let gone = usize::try_from(deleted).expect("small");
        assert_eq!(
            present(k).await,
            k >= gone,
            "ss-app{k}:1 after {gone} evictions"
        );
    }

    // Honest bytes: the filesystem's figure, not the estimate.
    let s = &doc["summary"];
    let fs_change = after.available_bytes - before.available_bytes;
    let bytes = honest_bytes(s, &root, fs_change);
    // The figures, for the log of the lane that runs this.
    eprintln!(
        "containerd store: {used:.1}% -> {now:.1}% (high {high}, low {low}), {} waves, {taken:?} \
         evicted where the estimate planned {}; {bytes}",
        waves.len(),
        e["estimated"],
    );

    // The same engine over tcp:// is remote: no disk.path, no measuring, exit 2.
    let proxy = TcpProxy::start(&daemon.host).await;
    let config = config_file(dir.path(), &pressure_yaml(&label, 1, 0, ""));
    let out = cli::with_config(&config)
        .arg("prune")
        .env("DOCKER_HOST", &proxy.host)
        .output()
        .expect("run prune");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "disk.path: the engine at {} is remote",
            proxy.host
        )),
        "{stderr}"
    );
    assert!(present(IMAGES - 1).await, "nothing deleted");
}
