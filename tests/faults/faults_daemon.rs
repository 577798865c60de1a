//! The daemon killed mid-prune (SIGKILL while deletions run), then restarted, on a dockerd
//! of the test's own (the shared test daemon is never touched):
//! - `stagesweep prune` ends within `docker.timeout` + a few seconds with exit 3, a message
//!   naming the host, and a report whose counters add up;
//! - after the restart nothing outside the plan is gone (a control set is intact);
//! - the agent, killed the same way mid-pass, backs off, reconnects, and its next pass
//!   completes.
//!
//! Every fixture has its own layer, so deletions take real time and are in flight at the kill.

use crate::support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bollard::Docker;
use chrono::Utc;
use support::accounting;
use support::agent_proc::{AgentProc, wait_until};
use support::daemon::OwnDaemon;
use support::fixture::{FixtureImage, load_batched};
use support::images_with_label;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const TIMEOUT_SECS: u64 = 5;
/// Beyond `docker.timeout`: process exit, printing the report.
const SLACK: Duration = Duration::from_secs(5);
const CANDIDATES: usize = 300;

struct World {
    label: (String, String),
    /// Old `stage=builder` images: the plan deletes them.
    candidates: Vec<String>,
    /// Unmatched (`stage=runtime`) and young `stage=builder` images: never deleted.
    control: Vec<String>,
}

impl World {
    fn selector(&self) -> String {
        format!("{}={}", self.label.0, self.label.1)
    }

    fn policy(&self) -> String {
        format!(
            "policies:\n  - name: builders\n    match:\n      labels: [\"{}\", stage=builder]\n    min_age: 1h\n",
            self.selector()
        )
    }
}

/// Load `n` images built by `make(i)` in batches of 50.
async fn load_many(docker: &Docker, n: usize, make: impl Fn(usize) -> FixtureImage) -> Vec<String> {
    let images: Vec<FixtureImage> = (0..n).map(make).collect();
    load_batched(docker, &images, 50).await
}

async fn world(docker: &Docker, name: &str) -> World {
    let label = (
        "stagesweep.test".to_owned(),
        format!("{name}-{}", std::process::id()),
    );
    let old = Utc::now() - chrono::Duration::days(2);
    let candidates = load_many(docker, CANDIDATES, |_| {
        FixtureImage::new(&label, old).label("stage", "builder")
    })
    .await;
    let mut control = load_many(docker, 20, |_| {
        FixtureImage::new(&label, old).label("stage", "runtime")
    })
    .await;
    control.extend(
        load_many(docker, 10, |_| {
            FixtureImage::new(&label, Utc::now()).label("stage", "builder")
        })
        .await,
    );
    World {
        label,
        candidates,
        control,
    }
}

async fn present(docker: &Docker, selector: &str) -> BTreeSet<String> {
    images_with_label(docker, selector)
        .await
        .into_iter()
        .map(|i| i.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_prune_exit_3_in_time_nothing_outside_the_plan_and_the_agent_recovers() {
    let daemon = OwnDaemon::start("kill");
    let docker = daemon.client().await;
    let w = world(&docker, "kill").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prune.yaml");
    std::fs::write(
        &config,
        format!(
            "history:\n  enabled: false\ndocker:\n  host: \"{}\"\n  timeout: {TIMEOUT_SECS}s\n  concurrency: 2\nlock_file: {}/lock\nbuilds:\n  lock_file: {}/builds.lock\n{}",
            daemon.host,
            dir.path().display(),
            dir.path().display(),
            w.policy()
        ),
    )
    .expect("config");

    // Prune; SIGKILL the daemon once ten deletions are logged.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stagesweep"))
        .args(["prune", "--output", "json", "--config"])
        .arg(&config)
        .env("RUST_LOG", "stagesweep=info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start prune");
    let mut stdout = child.stdout.take().expect("stdout");
    let reading = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut stderr = String::new();
    let mut deleted = 0;
    while deleted < 10 {
        let line = lines
            .next_line()
            .await
            .expect("read stderr")
            .unwrap_or_else(|| panic!("prune ended before ten deletions:\n{stderr}"));
        deleted += usize::from(line.contains("deleted image"));
        stderr.push_str(&line);
        stderr.push('\n');
    }
    daemon.kill9();
    let killed = Instant::now();
    while let Some(line) = lines.next_line().await.expect("read stderr") {
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("prune hangs after the kill")
        .expect("wait");
    let took = killed.elapsed();
    let stdout = reading.await.expect("stdout reader");
    assert_eq!(
        status.code(),
        Some(stagesweep::exit::UNREACHABLE),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(TIMEOUT_SECS) + SLACK,
        "took {took:?} after the kill:\n{stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&daemon.host),
        "the closing message names the host: {last}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("the report is printed");
    let acc = accounting::check(&doc);
    let candidates: BTreeSet<String> = w.candidates.iter().cloned().collect();
    assert_eq!(acc.planned, candidates, "the plan is the old builders");
    assert!(acc.count("deleted") >= 10, "{:?}", acc.by_kind);
    assert!(
        acc.count("not_attempted") > 0,
        "the kill came mid-pass: {:?}",
        acc.by_kind
    );

    // After the restart: the control set is intact; whatever is gone was planned.
    daemon.restart();
    let docker = daemon.client().await;
    let left = present(&docker, &w.selector()).await;
    for id in &w.control {
        assert!(left.contains(id), "control image {id} is gone");
    }
    let gone: Vec<&String> = w
        .candidates
        .iter()
        .filter(|id| !left.contains(*id))
        .collect();
    assert!(
        gone.len() >= acc.count("deleted"),
        "deleted images are gone"
    );

    agent_recovers_after_a_kill_mid_pass(&daemon, &w, &docker).await;
    drop(daemon);
}

/// The agent's first pass deletes what the prune left; kill the daemon in the middle of it;
/// the agent reports it, backs off, reconnects after the restart and its next pass finishes.
async fn agent_recovers_after_a_kill_mid_pass(daemon: &OwnDaemon, w: &World, docker: &Docker) {
    let old = Utc::now() - chrono::Duration::days(2);
    let more = load_many(docker, CANDIDATES, |_| {
        FixtureImage::new(&w.label, old).label("stage", "builder")
    })
    .await;
    assert_eq!(more.len(), CANDIDATES);
    let config = format!(
        "docker:\n  timeout: {TIMEOUT_SECS}s\n  concurrency: 2\nlock_file: {{dir}}/lock\nschedule: \"@every 2s\"\n\
         shutdown_timeout: 5s\nmetrics:\n  listen: 127.0.0.1:{{port}}\n{}",
        w.policy()
    );
    let agent = AgentProc::start(&config, &daemon.host);
    let log = || agent.log();
    wait_until(
        "deletions by the agent",
        Duration::from_secs(60),
        log,
        || agent.log().matches("deleted image").count() >= 10,
    );
    daemon.kill9();
    wait_until(
        "/healthz 503 after the kill",
        Duration::from_secs(30),
        log,
        || {
            agent
                .get("/healthz")
                .is_some_and(|(s, b)| s == 503 && b.contains(&daemon.host))
        },
    );
    // A few backoff rounds against the dead socket.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        agent.log().contains("retrying with backoff"),
        "{}",
        agent.log()
    );
    daemon.restart();
    let docker = daemon.client().await;
    wait_until(
        "the next pass to finish the job",
        Duration::from_secs(90),
        log,
        || {
            let left = futures_executor_block(present(&docker, &w.selector()));
            more.iter().all(|id| !left.contains(id))
                && w.candidates.iter().all(|id| !left.contains(id))
        },
    );
    wait_until("/healthz 200 again", Duration::from_secs(30), log, || {
        agent.get("/healthz").map(|r| r.0) == Some(200)
    });
    let left = futures_executor_block(present(&docker, &w.selector()));
    for id in &w.control {
        assert!(left.contains(id), "control image {id} is gone");
    }
    let failures = agent.metric("stagesweep_passes_total{result=\"failure\"}");
    assert!(
        failures.unwrap_or(0.0) >= 1.0,
        "the killed pass counts as failed"
    );
    let (status, _, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("docker is reachable again"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// Run a future to completion from synchronous polling code inside the multi-thread test.
fn futures_executor_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
