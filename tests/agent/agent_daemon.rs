//! `stagesweep agent` as a process against a real private dockerd (`DOCKER_HOST`, started by
//! scripts/test.sh): it prunes old fixtures on `@every 2s`, reports them in /metrics (clean for
//! `promtool check metrics`, `OpenMetrics` when asked for), /healthz and /livez, keeps its
//! configuration when a reload is broken, exits 0 on SIGTERM within
//! the shutdown timeout, shares the host lock with `prune`, and recovers on its own when
//! its daemon goes away and comes back.

use crate::support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bollard::Docker;
use chrono::Utc;
use stagesweep::locks::HostLock;
use support::fixture::{FixtureImage, load};
use support::{HOW_TO_START, Scope, images_with_label};

const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn config_text(selector: &str, port: u16, lock: &Path) -> String {
    format!(
        "policies:\n  - name: agent-test\n    match:\n      labels: [\"{selector}\"]\n    min_age: 1h\n\
         schedule: \"@every 2s\"\nrun_on_start: true\nlock_file: {}\nshutdown_timeout: {SHUTDOWN_TIMEOUT_SECS}s\n\
         metrics:\n  listen: 127.0.0.1:{port}\nbuilds:\n  lock_file: {}\n  retry: 1s\n  max_defer: 1s\n\
         # The loop's tests age images by Created; tests/history_daemon.rs covers the history.\n\
         history:\n  enabled: false\n",
        lock.display(),
        lock.with_file_name("builds.lock").display()
    )
}

/// A running agent process, its config and its log; killed on drop if still running.
struct Agent {
    child: Child,
    port: u16,
    config: PathBuf,
    lock: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(selector: &str, docker_host: &str) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("agent.yaml");
        let lock = dir.path().join("run/stagesweep.lock");
        let log = dir.path().join("agent.log");
        std::fs::write(&config, config_text(selector, port, &lock)).expect("write config");
        let child = Command::new(env!("CARGO_BIN_EXE_stagesweep"))
            .args(["agent", "--config"])
            .arg(&config)
            .env("DOCKER_HOST", docker_host)
            .env("RUST_LOG", "stagesweep=debug")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the agent");
        Agent {
            child,
            port,
            config,
            lock,
            log,
            _dir: dir,
        }
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request(path, None)
            .map(|(status, _, body)| (status, body))
    }

    /// GET `path` with an optional `Accept` header: status, head, body.
    fn request(&self, path: &str, accept: Option<&str>) -> Option<(u16, String, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let accept = accept.map_or_else(String::new, |a| format!("Accept: {a}\r\n"));
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        Some((status, head.to_owned(), body.to_owned()))
    }

    fn metric(&self, line_start: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        let line = body.lines().find(|l| l.starts_with(line_start))?;
        line.rsplit(' ').next()?.parse().ok()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -{sig} failed");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status and how long the agent took to exit.
    fn terminate(mut self) -> (ExitStatus, Duration, String) {
        self.signal("TERM");
        let asked = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, asked.elapsed(), self.log());
            }
            assert!(
                asked.elapsed() < Duration::from_secs(60),
                "agent ignored SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    agent: &Agent,
    mut check: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}; agent log:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `promtool check metrics` on `text`: (clean exit, what it said).
fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/install-deps.sh: apt-get install prometheus)");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

async fn count(docker: &Docker, selector: &str) -> usize {
    images_with_label(docker, selector).await.len()
}

fn days_ago(days: i64) -> chrono::DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .unwrap_or_else(|_| panic!("DOCKER_HOST is not set: {HOW_TO_START}"))
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
    let agent = Agent::start(&sel, &docker_host());

    wait_for(
        "the two old fixtures to go",
        Duration::from_secs(30),
        &agent,
        || async { count(&scope.docker, &sel).await == 1 },
    )
    .await;
    let left = images_with_label(&scope.docker, &sel).await;
    assert_eq!(left[0].id, young[0], "the young fixture stays");
    wait_for("/healthz 200", Duration::from_secs(10), &agent, || async {
        agent.get("/healthz") == Some((200, "ok\n".into()))
    })
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
    let (_, head, text) = agent.request("/metrics", None).expect("/metrics");
    assert!(head.contains("version=0.0.4"), "{head}");
    let (ok, said) = promtool_check_metrics(&text);
    assert!(
        ok && said.trim().is_empty(),
        "promtool:\n{said}\non:\n{text}"
    );
    // ... and Prometheus, which asks for OpenMetrics first, gets OpenMetrics.
    let prometheus =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (_, head, text) = agent
        .request("/metrics", Some(prometheus))
        .expect("/metrics");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(text.ends_with("# EOF\n"), "{text}");

    // The pass that deleted them matched 3; the next one (2s later) matches the young one.
    wait_for(
        "images_matched to follow",
        Duration::from_secs(10),
        &agent,
        || async { agent.metric("stagesweep_images_matched{policy=\"agent-test\"}") == Some(1.0) },
    )
    .await;

    // A broken reload: logged with its location, counted, the old configuration kept.
    let good = std::fs::read_to_string(&agent.config).expect("config");
    std::fs::write(&agent.config, good.replace("min_age: 1h", "min_age: soon"))
        .expect("break config");
    agent.signal("HUP");
    wait_for(
        "the failed reload to be counted",
        Duration::from_secs(10),
        &agent,
        || async {
            agent.metric("stagesweep_config_reloads_total{result=\"failure\"}") == Some(1.0)
        },
    )
    .await;
    let config_name = agent.config.display().to_string();
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
        &agent,
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
    let agent = Agent::start(&sel, &docker_host());
    // The agent's build lock is beside its pass lock (config_text); take it as a build would.
    let build = stagesweep::locks::BuildLock::shared(
        &agent.lock.with_file_name("builds.lock"),
        Some(Duration::ZERO),
        Duration::from_millis(10),
    )
    .await
    .expect("a build takes the lock");
    wait_for(
        "a pass to give up after max_defer",
        Duration::from_secs(30),
        &agent,
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
        &agent,
        || async { count(&scope.docker, &sel).await == 0 },
    )
    .await;
    let waits = agent
        .metric("stagesweep_build_lock_wait_seconds_count")
        .unwrap_or(0.0);
    assert!(waits >= 2.0, "every pass with deletions is timed: {waits}");
    scope.cleanup().await;
}

#[tokio::test]
async fn prune_and_agent_passes_never_run_at_once() {
    let scope = Scope::new("agent-lock").await;
    let sel = scope.selector();
    let agent = Agent::start(&sel, &docker_host());
    wait_for("/healthz 200", Duration::from_secs(20), &agent, || async {
        agent.get("/healthz").map(|r| r.0) == Some(200)
    })
    .await;

    // Hold the host lock as a manual prune would: the agent's passes wait, ticks are skipped.
    let held =
        HostLock::try_acquire(&agent.lock).expect("the agent holds the lock only during passes");
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
    let prune = Command::new(env!("CARGO_BIN_EXE_stagesweep"))
        .args(["prune", "--no-wait", "--config"])
        .arg(&agent.config)
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
        &agent,
        || async { count(&scope.docker, &sel).await == 0 },
    )
    .await;

    let (status, _, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    scope.cleanup().await;
}

/// A daemon of the test's own under a short /tmp path (socket paths are limited to 108 bytes).
struct OwnDaemon {
    dir: PathBuf,
}

impl OwnDaemon {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dockerd.sh")
    }

    fn start(dir: &Path) -> String {
        let out = Command::new(Self::script())
            .arg("start")
            .arg(dir)
            .output()
            .expect("run scripts/dockerd.sh");
        assert!(
            out.status.success(),
            "cannot start a private dockerd (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn stop(dir: &Path) {
        let out = Command::new(Self::script())
            .arg("stop")
            .arg(dir)
            .output()
            .expect("run scripts/dockerd.sh");
        assert!(
            out.status.success(),
            "cannot stop the private dockerd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = Command::new(Self::script())
                .arg("stop")
                .arg(&self.dir)
                .output();
        }
    }
}

async fn client(host: &str) -> Docker {
    let docker = Docker::connect_with_unix(host, 30, bollard::API_DEFAULT_VERSION).expect("client");
    docker
        .negotiate_version()
        .await
        .expect("the own daemon answers")
}

#[tokio::test]
async fn agent_recovers_on_its_own_when_its_daemon_restarts() {
    let _shared = docker_host(); // same precondition as the other engine tests
    let base = tempfile::Builder::new()
        .prefix("ss-agent-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let daemon = OwnDaemon {
        dir: base.path().join("d"),
    };
    let host = OwnDaemon::start(&daemon.dir);
    let label = (
        "stagesweep.test".to_owned(),
        format!("restart-{}", std::process::id()),
    );
    let sel = format!("{}={}", label.0, label.1);
    let agent = Agent::start(&sel, &host);
    wait_for("/healthz 200", Duration::from_secs(20), &agent, || async {
        agent.get("/healthz").map(|r| r.0) == Some(200)
    })
    .await;

    OwnDaemon::stop(&daemon.dir);
    wait_for(
        "/healthz 503 while docker is away",
        Duration::from_secs(40),
        &agent,
        || async {
            agent
                .get("/healthz")
                .is_some_and(|(s, b)| s == 503 && b.starts_with("docker unreachable"))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let host_again = OwnDaemon::start(&daemon.dir);
    assert_eq!(host_again, host, "same socket path");
    let docker = client(&host).await;
    wait_for(
        "/healthz 200 after the restart",
        Duration::from_secs(60),
        &agent,
        || async { agent.get("/healthz").map(|r| r.0) == Some(200) },
    )
    .await;
    load(&docker, &[FixtureImage::new(&label, days_ago(2))]).await;
    wait_for(
        "pruning on the restarted daemon",
        Duration::from_secs(30),
        &agent,
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
