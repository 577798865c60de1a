//! The image history against real daemons: `prune` records first-seen times and moves a
//! corrupt file aside; the agent records loads and container use from events, `prune` reads
//! the agent's file, a restarted agent replays what it missed; a restarted daemon is a gap.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::Docker;
use chrono::{DateTime, Utc};
use serde_json::Value;
use support::fixture::{FixtureImage, load};
use support::images::base_image;
use support::{Scope, create_container, images_with_label};

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(0, 0).expect("the epoch")
}

/// A config selecting `selector`, with its history (and lock) under `dir`.
fn write_config(dir: &Path, selector: &str, extra: &str) -> PathBuf {
    let config = dir.join("config.yaml");
    let text = format!(
        "policies:\n  - name: hist\n    match:\n      labels: [\"{selector}\"]\n    min_age: 1h\n\
         schedule: \"@every 1h\"\nrun_on_start: true\nlock_file: {dir}/run/stagesweep.lock\n\
         builds:\n  lock_file: {dir}/run/builds.lock\n\
         metrics:\n  enabled: false\nhistory:\n  path: {dir}/state/history.json\n{extra}",
        dir = dir.display()
    );
    std::fs::write(&config, text).expect("write config");
    config
}

fn history_path(dir: &Path) -> PathBuf {
    dir.join("state/history.json")
}

/// The history file's record of image `id` (`first_seen`, `last_used`, `first_seen_by`,
/// `last_used_by`), or null.
fn record(dir: &Path, id: &str) -> Value {
    let path = history_path(dir);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("no history file at {}: {e}", path.display()));
    let history = stagesweep::history::file::parse(&bytes).expect("a valid history file");
    let id: stagesweep::inventory::ImageId = id.parse().expect("an image ID");
    serde_json::to_value(history.images.get(&id)).expect("records serialize")
}

/// `stagesweep prune --output json`: the document and stderr.
fn prune(config: &Path, host: &str) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stagesweep"))
        .args(["prune", "--output", "json", "--config"])
        .arg(config)
        .env("DOCKER_HOST", host)
        .env("RUST_LOG", "stagesweep=info")
        .output()
        .expect("run stagesweep prune");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "prune failed: {stderr}");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (doc, stderr)
}

/// The decision about image `id` in a prune document.
fn decision<'a>(doc: &'a Value, id: &str) -> &'a Value {
    let images = doc["images"].as_array().expect("images");
    images
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the plan"))
}

/// A running `stagesweep agent`; killed on drop.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(config: &Path, host: &str, log: PathBuf) -> Agent {
        let child = Command::new(env!("CARGO_BIN_EXE_stagesweep"))
            .args(["agent", "--config"])
            .arg(config)
            .env("DOCKER_HOST", host)
            .env("RUST_LOG", "stagesweep=debug")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the agent");
        Agent { child, log }
    }

    /// The log, without the terminal's color codes.
    fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(char::is_ascii_alphabetic);
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Wait until the log has `n` lines containing `needle`.
    async fn wait_log(&self, needle: &str, n: usize, limit: Duration) {
        let start = Instant::now();
        while self.log().matches(needle).count() < n {
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {n}× {needle:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM; the agent writes its history and exits 0. Returns the log.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let status = self.child.wait().expect("wait for the agent");
        let log = self.log();
        assert!(status.success(), "agent exit {status}:\n{log}");
        log
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| panic!("{}", support::HOW_TO_START))
}

async fn gone(docker: &Docker, id: &str, selector: &str) -> bool {
    !images_with_label(docker, selector)
        .await
        .iter()
        .any(|i| i.id == id)
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_records_first_seen_and_moves_a_corrupt_history_aside() {
    let scope = Scope::new("hist-prune").await;
    let label = scope.label();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    let config = write_config(dir.path(), &scope.selector(), "");
    let ids = load(
        &scope.docker,
        &[
            FixtureImage::new(&label, days_ago(2)),
            FixtureImage::new(&label, epoch()),
        ],
    )
    .await;
    let (old, reproducible) = (&ids[0], &ids[1]);

    // First run on this host: adoption, so the 2-day-old image goes at once (classic recipe);
    // the 1970 image has no usable Created: it is first seen now.
    let (doc, stderr) = prune(&config, &host());
    assert!(stderr.contains("adopting"), "{stderr}");
    assert_eq!(decision(&doc, old)["outcome"]["kind"], "deleted", "{doc:#}");
    let kept = decision(&doc, reproducible);
    assert_eq!(kept["reason"]["kind"], "arrived_recently", "{kept:#}");
    assert_eq!(kept["history"]["first_seen_by"], "listing");
    assert_eq!(record(dir.path(), reproducible)["first_seen_by"], "listing");

    // From the second run on, an image that arrives is first seen then, whatever Created says.
    let late = load(&scope.docker, &[FixtureImage::new(&label, days_ago(2))]).await;
    let (doc, _) = prune(&config, &host());
    let d = decision(&doc, &late[0]);
    assert_eq!(d["reason"]["kind"], "arrived_recently", "{d:#}");
    assert_eq!(d["action"], "keep");
    let since = Utc::now().timestamp()
        - record(dir.path(), &late[0])["first_seen"]
            .as_i64()
            .expect("secs");
    assert!((0..120).contains(&since), "first seen {since}s ago");

    // A corrupt file: moved aside with a warning; everything is first seen now.
    std::fs::write(history_path(dir.path()), b"{\"format\": \"stagesweep-hist")
        .expect("corrupt it");
    let more = load(&scope.docker, &[FixtureImage::new(&label, days_ago(9))]).await;
    let (doc, stderr) = prune(&config, &host());
    assert!(stderr.contains("moved aside"), "{stderr}");
    assert_eq!(
        doc["summary"]["deleted"], 0,
        "nothing deleted by accident: {doc:#}"
    );
    assert_eq!(
        decision(&doc, &more[0])["reason"]["kind"],
        "arrived_recently"
    );
    let aside: Vec<String> = std::fs::read_dir(dir.path().join("state"))
        .expect("state dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("history.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(record(dir.path(), &more[0])["first_seen_by"], "listing");
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_records_loads_and_container_use_prune_reads_it_and_a_restart_replays() {
    let scope = Scope::new("hist-agent").await;
    let label = scope.label();
    let sel = scope.selector();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &sel, "");
    let old = load(&scope.docker, &[FixtureImage::new(&label, days_ago(2))]).await;
    let (base, _tag) = base_image(&scope).await;

    let agent = Agent::start(&config, &host(), dir.path().join("agent1.log"));
    let start = Instant::now();
    while !gone(&scope.docker, &old[0], &sel).await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "old image kept:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    agent
        .wait_log("following docker events", 1, Duration::from_secs(30))
        .await;
    let t0 = Utc::now().timestamp() - 1;
    let reproducible = load(&scope.docker, &[FixtureImage::new(&label, epoch())]).await;
    let container = create_container(&scope, &base).await;
    scope
        .docker
        .start_container(
            &container,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start the container");
    tokio::time::sleep(Duration::from_secs(2)).await; // events are applied within milliseconds
    let log = agent.stop();
    assert!(
        history_path(dir.path()).exists(),
        "no history written:\n{log}"
    );

    let loaded = record(dir.path(), &reproducible[0]);
    assert_eq!(loaded["first_seen_by"], "event", "{loaded}");
    assert!(
        loaded["first_seen"].as_i64().expect("secs") >= t0,
        "{loaded}"
    );
    let used = record(dir.path(), &base);
    assert_eq!(used["last_used_by"], "event", "{used}");
    assert!(used["last_used"].as_i64().expect("secs") >= t0, "{used}");

    // `prune` reads the agent's history: the 1970 image was first seen a moment ago.
    let (doc, _) = prune(&config, &host());
    let d = decision(&doc, &reproducible[0]);
    assert_eq!(d["reason"]["kind"], "arrived_recently", "{d:#}");
    assert_eq!(d["reason"]["first_seen_by"], "event");
    assert_eq!(decision(&doc, &base)["reason"]["kind"], "in_use");

    // While no agent runs, an image arrives; the next agent replays the daemon's buffer.
    let missed = load(&scope.docker, &[FixtureImage::new(&label, days_ago(3))]).await;
    let agent = Agent::start(&config, &host(), dir.path().join("agent2.log"));
    agent
        .wait_log("following docker events", 1, Duration::from_secs(30))
        .await;
    let log = agent.stop();
    assert!(log.contains("gap=false"), "{log}");
    let m = record(dir.path(), &missed[0]);
    assert_eq!(
        m["first_seen_by"], "event",
        "seen in the replay: {m}\n{log}"
    );
    assert!(
        images_with_label(&scope.docker, &sel)
            .await
            .iter()
            .any(|i| i.id == missed[0])
    );
    scope.cleanup().await;
}

/// A daemon of the test's own under a short /tmp path, restarted with its data kept.
struct OwnDaemon {
    dir: PathBuf,
}

impl OwnDaemon {
    fn script(action: &str, dir: &Path) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dockerd.sh");
        let out = Command::new(script)
            .arg(action)
            .arg(dir)
            .output()
            .expect("scripts/dockerd.sh");
        assert!(
            out.status.success(),
            "dockerd.sh {action} failed (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// SIGTERM the daemon and wait for it to exit; its data root stays.
    fn shut_down(&self) {
        let pid = std::fs::read_to_string(self.dir.join("dockerd.launcher.pid")).expect("pid file");
        let pid = pid.trim();
        let _ = Command::new("kill").args(["-TERM", pid]).status();
        let start = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "dockerd ignores SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dockerd.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_restart_is_a_gap_and_known_images_count_as_used() {
    let _shared = host(); // same precondition as the other engine tests
    let base = tempfile::Builder::new()
        .prefix("ss-gap-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let daemon = OwnDaemon {
        dir: base.path().join("d"),
    };
    let own = OwnDaemon::script("start", &daemon.dir);
    let docker = Docker::connect_with_unix(&own, 30, bollard::API_DEFAULT_VERSION)
        .expect("client")
        .negotiate_version()
        .await
        .expect("the own daemon answers");
    let label = (
        "stagesweep.test".to_owned(),
        format!("gap-{}", std::process::id()),
    );
    let ids = load(
        &docker,
        &[FixtureImage::new(&label, days_ago(2)).tag("gap/known:1")],
    )
    .await;
    // The policy selects nothing: this test is about the history only.
    let config = write_config(base.path(), "stagesweep.test=nothing-here", "");
    let agent = Agent::start(&config, &own, base.path().join("agent.log"));
    agent
        .wait_log("following docker events", 1, Duration::from_secs(30))
        .await;
    // An event, so that the history has a checkpoint the daemon's buffer holds.
    let tag = bollard::query_parameters::TagImageOptionsBuilder::new()
        .repo("gap/known")
        .tag("2")
        .build();
    docker.tag_image(&ids[0], Some(tag)).await.expect("tag");
    tokio::time::sleep(Duration::from_secs(1)).await;

    daemon.shut_down();
    let restarted_at = Utc::now().timestamp();
    assert_eq!(OwnDaemon::script("start", &daemon.dir), own);
    agent
        .wait_log("following docker events", 2, Duration::from_secs(90))
        .await;
    let log = agent.stop();
    assert!(log.contains("gap=true"), "{log}");
    let known = record(base.path(), &ids[0]);
    assert_eq!(known["last_used_by"], "gap", "{known}\n{log}");
    assert!(
        known["last_used"].as_i64().expect("secs") >= restarted_at,
        "{known}"
    );
}
