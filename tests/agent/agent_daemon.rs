//! `stagesweep agent` as a process against a real private dockerd (`DOCKER_HOST`, started by
//! scripts/test.sh): it prunes old fixtures on `@every 2s`, reports them in /metrics (clean for
//! `promtool check metrics`, `OpenMetrics` when asked for), /healthz and /livez, keeps its
//! configuration when a reload is broken, exits 0 on SIGTERM within
//! the shutdown timeout, shares the host lock with `prune`, and recovers on its own when
//! its daemon goes away and comes back.

use crate::support;

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use chrono::Utc;
use stagesweep::locks::HostLock;
use support::agent_proc::{AgentProc, wait_for};
use support::daemon::OwnDaemon;
use support::fixture::{FixtureImage, days_ago, load};
use support::{Scope, cli, docker_host, images_with_label, tools};

const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// The agent's config: `{port}` and `{dir}` are [`AgentProc`]'s, its locks under `{dir}/run/`.
fn config_text(selector: &str) -> String {
    format!(
        "policies:\n  - name: agent-test\n    match:\n      labels: [\"{selector}\"]\n    min_age: 1h\n\
         schedule: \"@every 2s\"\nrun_on_start: true\nlock_file: {{dir}}/run/stagesweep.lock\nshutdown_timeout: {SHUTDOWN_TIMEOUT_SECS}s\n\
         metrics:\n  listen: 127.0.0.1:{{port}}\nbuilds:\n  lock_file: {{dir}}/run/builds.lock\n  retry: 1s\n  max_defer: 1s\n\
         # The loop's tests age images by Created; tests/history_daemon.rs covers the history.\n\
         history:\n  enabled: false\n"
    )
}

fn start(selector: &str, docker_host: &str) -> AgentProc {
    AgentProc::start(&config_text(selector), docker_host)
}

/// The agent's pass lock (`lock_file`, beside its build lock).
fn pass_lock(agent: &AgentProc) -> PathBuf {
    agent.dir.path().join("run/stagesweep.lock")
}

async fn count(docker: &Docker, selector: &str) -> usize {
    images_with_label(docker, selector).await.len()
}

#[tokio::test]
async fn agent_prunes_reports_survives_a_broken_reload_and_stops_on_sigterm() {
    let scope = Scope::new("agent-run").await;
    let label = scope.label();
    let sel = scope.selector();
    load(
        &scope.docker,
        &[
            FixtureImage::new(&label, days_ago(2)),
            FixtureImage::new(&label, days_ago(3)),
        ],
    )
    .await;
    let young = load(&scope.docker, &[FixtureImage::new(&label, Utc::now())]).await;
    let agent = start(&sel, &docker_host());

    wait_for(
        "the two old fixtures to go",
        Duration::from_secs(30),
        || agent.log(),
        || async { count(&scope.docker, &sel).await == 1 },
    )
    .await;
    let left = images_with_label(&scope.docker, &sel).await;
    assert_eq!(left[0].id, young[0], "the young fixture stays");
    wait_for(
        "/healthz 200",
        Duration::from_secs(10),
        || agent.log(),
        || async { agent.get("/healthz") == Some((200, "ok\n".into())) },
    )
    .await;
    assert_eq!(
        agent.metric("stagesweep_images_deleted_total{policy=\"agent-test\"}"),
        Some(2.0)
    );
    assert!(
        agent
            .metric("stagesweep_passes_total{result=\"success\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(agent.get("/livez"), Some((200, "ok\n".into())));
    assert_eq!(agent.metric("stagesweep_docker_up"), Some(1.0));
    assert!(
        agent
            .metric("stagesweep_last_pass_success_timestamp_seconds")
            .is_some()
    );
    assert!(agent.metric("process_resident_memory_bytes").unwrap_or(0.0) > 1e6);
    // What a scraper without preferences (curl, promtool) gets is clean text 0.0.4 ...
    let plain = agent.request("/metrics", None).expect("/metrics");
    let (head, text) = (plain.head, plain.body);
    assert!(head.contains("version=0.0.4"), "{head}");
    let (ok, said) = tools::check_metrics(&text);
    assert!(
        ok && said.trim().is_empty(),
        "promtool:\n{said}\non:\n{text}"
    );
    // ... and Prometheus, which asks for OpenMetrics first, gets OpenMetrics.
    let prometheus =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let open = agent
        .request("/metrics", Some(prometheus))
        .expect("/metrics");
    let (head, text) = (open.head, open.body);
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(text.ends_with("# EOF\n"), "{text}");

    // The pass that deleted them matched 3; the next one (2s later) matches the young one.
    wait_for(
        "images_matched to follow",
        Duration::from_secs(10),
        || agent.log(),
        || async { agent.metric("stagesweep_images_matched{policy=\"agent-test\"}") == Some(1.0) },
    )
    .await;

    // A broken reload: logged with its location, counted, the old configuration kept.
    let config = agent.config_path();
    let good = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, good.replace("min_age: 1h", "min_age: soon")).expect("break config");
    agent.signal("HUP");
    wait_for(
        "the failed reload to be counted",
        Duration::from_secs(10),
        || agent.log(),
        || async {
            agent.metric("stagesweep_config_reloads_total{result=\"failure\"}") == Some(1.0)
        },
    )
    .await;
    let config_name = config.display().to_string();
    assert!(
        agent
            .log()
            .lines()
            .any(|l| l.contains(&format!("{config_name}:")) && l.contains("min_age")),
        "no located problem in the log:\n{}",
        agent.log()
    );
    load(&scope.docker, &[FixtureImage::new(&label, days_ago(5))]).await;
    wait_for(
        "pruning to go on with the old configuration",
        Duration::from_secs(30),
        || agent.log(),
        || async { count(&scope.docker, &sel).await == 1 },
    )
    .await;
    assert_eq!(agent.get("/healthz").map(|r| r.0), Some(200));

    let (status, took, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(
        took < Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 2),
        "took {took:?} to stop"
    );
    scope.cleanup().await;
}

#[tokio::test]
async fn a_build_holding_the_build_lock_defers_the_agents_deletions_and_is_counted() {
    let scope = Scope::new("agent-builds").await;
    let label = scope.label();
    let sel = scope.selector();
    load(
        &scope.docker,
        &[
            FixtureImage::new(&label, days_ago(2)),
            FixtureImage::new(&label, days_ago(3)),
        ],
    )
    .await;
    let agent = start(&sel, &docker_host());
    // The agent's build lock is beside its pass lock (config_text); take it as a build would.
    let build = stagesweep::locks::BuildLock::shared(
        &pass_lock(&agent).with_file_name("builds.lock"),
        Some(Duration::ZERO),
        Duration::from_millis(10),
    )
    .await
    .expect("a build takes the lock");
    wait_for(
        "a pass to give up after max_defer",
        Duration::from_secs(30),
        || agent.log(),
        || async {
            agent
                .metric("stagesweep_deferred_passes_total{result=\"skipped\"}")
                .is_some_and(|n| n >= 1.0)
        },
    )
    .await;
    assert_eq!(count(&scope.docker, &sel).await, 2, "nothing deleted");
    assert!(
        agent.log().contains("skipping them in this pass"),
        "{}",
        agent.log()
    );
    drop(build);
    wait_for(
        "the next pass to delete",
        Duration::from_secs(30),
        || agent.log(),
        || async { count(&scope.docker, &sel).await == 0 },
    )
    .await;
    // The pass publishes its figures when it ends, a moment after its deletions.
    wait_for(
        "every pass with deletions to be timed (the skipped one and the one that deleted)",
        Duration::from_secs(10),
        || {
            let waits = agent.metric("stagesweep_build_lock_wait_seconds_count");
            format!(
                "stagesweep_build_lock_wait_seconds_count {waits:?}\n{}",
                agent.log()
            )
        },
        || async {
            agent
                .metric("stagesweep_build_lock_wait_seconds_count")
                .is_some_and(|n| n >= 2.0)
        },
    )
    .await;
    scope.cleanup().await;
}

#[tokio::test]
async fn prune_and_agent_passes_never_run_at_once() {
    let scope = Scope::new("agent-lock").await;
    let sel = scope.selector();
    let agent = start(&sel, &docker_host());
    wait_for(
        "/healthz 200",
        Duration::from_secs(20),
        || agent.log(),
        || async { agent.get("/healthz").map(|r| r.0) == Some(200) },
    )
    .await;

    // Hold the host lock as a manual prune would: the agent's passes wait, ticks are skipped.
    // The agent holds the lock only during its passes (on a 2 s schedule): taken between two.
    let started = std::time::Instant::now();
    let held = loop {
        match HostLock::try_acquire(&pass_lock(&agent)) {
            Ok(held) => break held,
            Err(e) if started.elapsed() > Duration::from_secs(10) => {
                panic!("the agent held the lock for 10 s: {e}\n{}", agent.log())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), days_ago(2))],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        count(&scope.docker, &sel).await,
        1,
        "no pass may delete while the lock is held"
    );
    assert!(
        agent
            .metric("stagesweep_ticks_skipped_total{reason=\"pass_running\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
    let prune = cli::with_config(&agent.config_path())
        .args(["prune", "--no-wait"])
        .env("DOCKER_HOST", docker_host())
        .output()
        .expect("run prune");
    assert_eq!(
        prune.status.code(),
        Some(stagesweep::exit::LOCKED),
        "prune --no-wait: {}",
        String::from_utf8_lossy(&prune.stderr)
    );
    drop(held);
    wait_for(
        "the waiting pass to prune once the lock is free",
        Duration::from_secs(20),
        || agent.log(),
        || async { count(&scope.docker, &sel).await == 0 },
    )
    .await;

    let (status, _, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    scope.cleanup().await;
}

#[tokio::test]
async fn agent_recovers_on_its_own_when_its_daemon_restarts() {
    let _shared = docker_host(); // same precondition as the other engine tests
    let daemon = OwnDaemon::start("agent");
    let label = (
        "stagesweep.test".to_owned(),
        format!("restart-{}", std::process::id()),
    );
    let sel = format!("{}={}", label.0, label.1);
    let agent = start(&sel, &daemon.host);
    wait_for(
        "/healthz 200",
        Duration::from_secs(20),
        || agent.log(),
        || async { agent.get("/healthz").map(|r| r.0) == Some(200) },
    )
    .await;

    daemon.stop();
    wait_for(
        "/healthz 503 while docker is away",
        Duration::from_secs(40),
        || agent.log(),
        || async {
            agent
                .get("/healthz")
                .is_some_and(|(s, b)| s == 503 && b.starts_with("docker unreachable"))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    daemon.restart(); // on the same socket path
    let docker = daemon.client_with_timeout(30).await;
    wait_for(
        "/healthz 200 after the restart",
        Duration::from_secs(60),
        || agent.log(),
        || async { agent.get("/healthz").map(|r| r.0) == Some(200) },
    )
    .await;
    load(&docker, &[FixtureImage::new(&label, days_ago(2))]).await;
    wait_for(
        "pruning on the restarted daemon",
        Duration::from_secs(30),
        || agent.log(),
        || async { count(&docker, &sel).await == 0 },
    )
    .await;

    let (status, _, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    let outages = log.matches("docker is unreachable; retrying").count();
    assert_eq!(
        outages, 1,
        "one log line per state change, not per retry:\n{log}"
    );
    assert_eq!(log.matches("docker is reachable again").count(), 1, "{log}");
    drop(daemon);
}
