//! The image history against real daemons: `prune` records first-seen times and moves a
//! corrupt file aside; the agent records loads and container use from events, `prune` reads
//! the agent's file, a restarted agent replays what it missed; a restarted daemon is a gap.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use chrono::{DateTime, Utc};
use serde_json::Value;
use support::agent_proc::{AgentProc, wait_for};
use support::cli::{self, entry};
use support::daemon::OwnDaemon;
use support::fixture::{FixtureImage, days_ago, load};
use support::images::base_image;
use support::{Scope, create_container, docker_host, images_with_label};

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
    cli::prune_json(config, host, "stagesweep=info")
}

/// `stagesweep agent` with `config`, whose history and locks `prune` shares.
fn start_agent(config: &Path, host: &str) -> AgentProc {
    let text = std::fs::read_to_string(config).expect("read config");
    AgentProc::start(&text, host)
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
    let (doc, stderr) = prune(&config, &docker_host());
    assert!(stderr.contains("adopting"), "{stderr}");
    assert_eq!(entry(&doc, old)["outcome"]["kind"], "deleted", "{doc:#}");
    let kept = entry(&doc, reproducible);
    assert_eq!(kept["reason"]["kind"], "arrived_recently", "{kept:#}");
    assert_eq!(kept["history"]["first_seen_by"], "listing");
    assert_eq!(record(dir.path(), reproducible)["first_seen_by"], "listing");

    // From the second run on, an image that arrives is first seen then, whatever Created says.
    let late = load(&scope.docker, &[FixtureImage::new(&label, days_ago(2))]).await;
    let (doc, _) = prune(&config, &docker_host());
    let d = entry(&doc, &late[0]);
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
    let (doc, stderr) = prune(&config, &docker_host());
    assert!(stderr.contains("moved aside"), "{stderr}");
    assert_eq!(
        doc["summary"]["deleted"], 0,
        "nothing deleted by accident: {doc:#}"
    );
    assert_eq!(entry(&doc, &more[0])["reason"]["kind"], "arrived_recently");
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

    let agent = start_agent(&config, &docker_host());
    wait_for(
        "the old image to go",
        Duration::from_secs(60),
        || agent.log(),
        || gone(&scope.docker, &old[0], &sel),
    )
    .await;
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
    let (doc, _) = prune(&config, &docker_host());
    let d = entry(&doc, &reproducible[0]);
    assert_eq!(d["reason"]["kind"], "arrived_recently", "{d:#}");
    assert_eq!(d["reason"]["first_seen_by"], "event");
    assert_eq!(entry(&doc, &base)["reason"]["kind"], "in_use");

    // While no agent runs, an image arrives; the next agent replays the daemon's buffer.
    let missed = load(&scope.docker, &[FixtureImage::new(&label, days_ago(3))]).await;
    let agent = start_agent(&config, &docker_host());
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

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_restart_is_a_gap_and_known_images_count_as_used() {
    let _shared = docker_host(); // same precondition as the other engine tests
    let daemon = OwnDaemon::start("gap");
    let docker = daemon.client_with_timeout(30).await;
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
    let config = write_config(daemon.base(), "stagesweep.test=nothing-here", "");
    let agent = start_agent(&config, &daemon.host);
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
    daemon.restart(); // on the same socket
    agent
        .wait_log("following docker events", 2, Duration::from_secs(90))
        .await;
    let log = agent.stop();
    assert!(log.contains("gap=true"), "{log}");
    let known = record(daemon.base(), &ids[0]);
    assert_eq!(known["last_used_by"], "gap", "{known}\n{log}");
    assert!(
        known["last_used"].as_i64().expect("secs") >= restarted_at,
        "{known}"
    );
}
