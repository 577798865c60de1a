//! Disk watermarks on a real filesystem: a private dockerd whose data root is a small tmpfs
//! the test mounts, filled with fixtures of unique layers until usage crosses `high`.
//! `prune` evicts the `when: disk_pressure` policy's images least recently used first
//! (as the history file says), measuring between waves, until the disk is at `low`, and no
//! further; the disk really comes down, and the next pass deletes nothing. An agent whose
//! disk stays over `high` with nothing to evict backs its early passes off; one whose engine
//! is remote (`tcp://`, no `disk.path`) says so at error level and evicts nothing.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use chrono::Utc;
use serde_json::Value;
use stagesweep::history::file::save;
use stagesweep::history::{History, Source};
use stagesweep::inventory::ImageId;
use stagesweep::pass::disk::statvfs;
use support::agent_proc::AgentProc;
use support::daemon::OwnDaemon;
use support::fixture::{FixtureImage, load};
use support::tcp_proxy::TcpProxy;
use support::{Scope, cli, docker_host};

const MIB: usize = 1 << 20;
const IMAGES: usize = 10;

fn used_percent(path: &Path) -> f64 {
    statvfs(path)
        .expect("statvfs on the data root")
        .used_ratio()
        * 100.0
}

fn prune(config: &Path, host: &str) -> Value {
    cli::prune_json(config, host, "warn").0
}

/// Ten images of 4 MiB each, each its own layer, loaded one at a time (a load needs room
/// for its archive too).
async fn fill(docker: &Docker, label: &(String, String)) -> Vec<String> {
    let month_ago = Utc::now() - chrono::Duration::days(30);
    let mut ids = Vec::new();
    for _ in 0..IMAGES {
        let fixture = FixtureImage::new(label, month_ago).layer_bytes(4 * MIB);
        ids.extend(load(docker, &[fixture]).await);
    }
    ids
}

/// A history in which `ids[0]` is the least recently used (10 days ago) … `ids[9]` 1 day ago.
fn write_history(path: &Path, engine_id: String, ids: &[String]) {
    let now = Utc::now().timestamp();
    let mut history = History {
        engine_id,
        ..History::default()
    };
    for (k, id) in ids.iter().enumerate() {
        let days = i64::try_from(IMAGES - k).expect("small");
        let id: ImageId = id.parse().expect("an image ID");
        history.used(id, now - 30 * 86_400, Source::Event);
        history.used(id, now - days * 86_400, Source::Event);
    }
    save(path, &history, true).expect("write the history");
}

fn write_config(dir: &Path, label: &(String, String), high: u8, low: u8) -> PathBuf {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "policies:\n  - name: pressure\n    match:\n      labels: [\"{}={}\"]\n    min_age: 1h\n    when: disk_pressure\n\
             disk:\n  high: {high}\n  low: {low}\nhistory:\n  path: {}\nlock_file: {}\n\
             builds:\n  lock_file: {}\n",
            label.0,
            label.1,
            dir.join("state/history.json").display(),
            dir.join("run/stagesweep.lock").display(),
            dir.join("run/builds.lock").display()
        ),
    )
    .expect("write config");
    config
}

/// A percentage rounded down, within 0..=100.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped to 0..=100 first
fn whole_percent(p: f64) -> u8 {
    p.floor().clamp(0.0, 100.0) as u8
}

#[tokio::test(flavor = "multi_thread")]
async fn over_high_the_pass_evicts_lru_first_until_low_and_no_further() {
    let _shared = docker_host(); // same precondition as the other engine tests
    let daemon = OwnDaemon::start_on_tmpfs("disk", "96m");
    let (base, host) = (daemon.base(), &daemon.host);
    let data = daemon.dir.join("data");
    let docker = daemon.client_with_timeout(60).await;
    let engine_id = docker.info().await.expect("info").id.expect("an engine ID");

    let label = (
        "stagesweep.test".to_owned(),
        format!("disk-{}", std::process::id()),
    );
    let ids = fill(&docker, &label).await;
    write_history(&base.join("state/history.json"), engine_id, &ids);

    // Watermarks around what the disk holds now: over high, low ~20 points below.
    let before = used_percent(&data);
    let (high, low) = (whole_percent(before - 1.0), whole_percent(before - 20.0));
    assert!(
        low > 5,
        "the fixtures should fill most of the tmpfs: {before:.1}% used"
    );
    let config = write_config(base, &label, high, low);

    let doc = prune(&config, host);
    let decisions: Vec<&Value> = ids.iter().map(|id| cli::entry(&doc, id)).collect();
    let evicted: Vec<bool> = decisions
        .iter()
        .map(|d| d["reason"]["kind"] == "disk_pressure")
        .collect();
    // The least recently used ones, a prefix of the order, each deleted.
    let k = evicted.iter().filter(|e| **e).count();
    let want: Vec<bool> = (0..IMAGES).map(|i| i < k).collect();
    assert_eq!(evicted, want, "{doc:#}");
    for d in &decisions[..k] {
        assert_eq!(d["outcome"]["kind"], "deleted", "{d:#}");
    }
    for d in &decisions[k..] {
        assert_eq!(d["reason"]["kind"], "no_disk_pressure", "{d:#}");
    }
    // Measured: each wave started over low, and the last one brought the disk to low.
    let e = &doc["eviction"];
    assert_eq!(e["end"]["kind"], "low_reached", "{e:#}");
    assert_eq!(e["taken"].as_u64(), Some(k as u64), "{e:#}");
    for w in e["waves"].as_array().expect("waves") {
        let before = w["used_permille_before"].as_u64().expect("measured");
        assert!(before > u64::from(low) * 10, "a wave under low: {e:#}");
    }
    let after = used_percent(&data);
    assert!(
        after < f64::from(high),
        "{before:.1}% → {after:.1}%, high {high}"
    );
    assert!(
        after <= f64::from(low) + 0.5,
        "{before:.1}% → {after:.1}%, low {low}"
    );
    assert_eq!(doc["summary"]["measured_on"], data.display().to_string());

    // Below high now: the next pass deletes nothing.
    let again = prune(&config, host);
    assert_eq!(again["summary"]["deleted"], 0, "{again:#}");
    assert!(again["disk"]["capacity_bytes"].as_u64().expect("measured") > 0);
}

#[test]
fn percentages_without_a_visible_filesystem_are_a_config_error() {
    let host = docker_host();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "policies:\n  - name: p\n    match:\n      labels: [stagesweep.test=none]\n    when: disk_pressure\n\
             disk:\n  path: /nonexistent/docker\nlock_file: {0}/lock\nhistory:\n  enabled: false\n\
             builds:\n  lock_file: {0}/builds.lock\n",
            dir.path().display()
        ),
    )
    .expect("write config");
    let out = cli::with_config(&config)
        .arg("plan")
        .env("DOCKER_HOST", &host)
        .output()
        .expect("run stagesweep plan");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/docker"), "{stderr}");
    assert!(
        stderr.contains("measure: api"),
        "names the way out: {stderr}"
    );
}

#[tokio::test]
async fn an_agent_whose_disk_stays_over_high_backs_its_early_passes_off() {
    let host = docker_host();
    let scope = Scope::new("stuck").await;
    // Over a 1-byte budget whatever else the daemon holds: an image no policy matches.
    load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), Utc::now())],
    )
    .await;
    let config = format!(
        "policies:\n  - name: p\n    match:\n      labels: [\"{}-none\"]\n    when: disk_pressure\n\
         disk:\n  measure: api\n  max_images_bytes: 1\n  check_every: 1s\n\
         schedule: \"@hourly\"\nrun_on_start: false\nlock_file: {{dir}}/run/stagesweep.lock\n\
         metrics:\n  listen: 127.0.0.1:{{port}}\nhistory:\n  enabled: false\n",
        scope.selector()
    );
    let agent = AgentProc::start(&config, &host);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let log = agent.log();
    let passes = log.matches("pass finished").count();
    // Checks every second find the disk over high; passes after waits of 2, 4, 8 s: at about
    // 1, 3 and 7 s — not ten of them.
    assert!((2..=4).contains(&passes), "{passes} passes in 10 s:\n{log}");
    assert!(log.contains("may evict nothing more"), "{log}");
    assert_eq!(
        agent.metric("stagesweep_disk_pressure_stuck"),
        Some(1.0),
        "{log}"
    );
    drop(agent);
    scope.cleanup().await;
}

#[tokio::test]
async fn an_agent_on_a_remote_engine_logs_the_refusal_at_error_and_evicts_nothing() {
    let host = docker_host();
    let scope = Scope::new("remote").await;
    let tag = scope.tag("evictable");
    load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), Utc::now() - chrono::Duration::hours(2)).tag(&tag)],
    )
    .await;
    // Any usage is over a 1 % high: on a local engine this policy would evict the image.
    let config = format!(
        "policies:\n  - name: p\n    match:\n      labels: [\"{}\"]\n    min_age: 0s\n    \
         when: disk_pressure\ndisk:\n  high: 1\n  low: 0\n\
         schedule: \"@hourly\"\nrun_on_start: true\nlock_file: {{dir}}/run/stagesweep.lock\n\
         metrics:\n  listen: 127.0.0.1:{{port}}\nhistory:\n  enabled: false\n",
        scope.selector()
    );
    let proxy = TcpProxy::start(&host).await;
    let mut agent = AgentProc::start(&config, &proxy.host);
    agent
        .wait_log("pass finished", 1, Duration::from_secs(60))
        .await;
    let log = agent.log();
    let refusal = log
        .lines()
        .find(|l| l.contains("disk_pressure policies delete nothing this pass"))
        .unwrap_or_else(|| panic!("no refusal in the log:\n{log}"));
    assert!(refusal.contains("ERROR"), "{refusal}");
    assert!(
        refusal.contains(&format!("the engine at {} is remote", proxy.host))
            && refusal.contains("key=\"disk.path\""),
        "names the key: {refusal}"
    );
    assert!(agent.running(), "the agent goes on:\n{log}");
    assert!(
        scope.docker.inspect_image(&tag).await.is_ok(),
        "nothing evicted:\n{log}"
    );
    drop(agent);
    scope.cleanup().await;
}
