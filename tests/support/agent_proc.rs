//! `stagesweep agent` as a child process: its config in a temp dir of its own (with its own
//! history and build lock unless the config names them), its log, one-shot HTTP GETs against
//! its listener (each bounded in time), signals, SIGTERM and exit; and the polling waits the
//! tests use around it.

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::http::{self, Response};

/// A running agent; killed on drop if still running.
pub struct AgentProc {
    child: Child,
    /// The metrics port `{port}` stands for in the config.
    pub port: u16,
    /// The agent's own directory (`{dir}` in the config): its config, log, history and lock.
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl AgentProc {
    /// Start `stagesweep agent` with `config` (YAML; `{port}` and `{dir}` are replaced by a
    /// free port for the metrics listener and the agent's temp dir) against `docker_host`,
    /// logging at debug level, with no `NOTIFY_SOCKET`.
    pub fn start(config: &str, docker_host: &str) -> AgentProc {
        Self::start_with(config, docker_host, &[])
    }

    /// [`AgentProc::start`] with `env` set on top (e.g. a `NOTIFY_SOCKET` of the test's own).
    pub fn start_with(config: &str, docker_host: &str, env: &[(&str, String)]) -> AgentProc {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = http::free_port();
        let mut text = config
            .replace("{port}", &port.to_string())
            .replace("{dir}", &dir.path().display().to_string());
        // The agent keeps a history and takes the build lock to delete: this one's are the
        // test's own, never the host's (another test's agent or prune would share them).
        let has =
            |text: &str, key: &str| text.starts_with(key) || text.contains(&format!("\n{key}"));
        if !has(&text, "history:") {
            let history = dir.path().join("state/history.json");
            // A test's agent waits for its history to follow the events at most 2 s (its
            // engine may be a fake that serves no events).
            let _ = writeln!(
                text,
                "history:\n  path: {}\n  catch_up: 2s",
                history.display()
            );
        }
        if !has(&text, "builds:") {
            let lock = dir.path().join("builds.lock");
            let _ = writeln!(text, "builds:\n  lock_file: {}", lock.display());
        }
        let path = dir.path().join("agent.yaml");
        std::fs::write(&path, text).expect("write the agent config");
        let log = dir.path().join("agent.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stagesweep"));
        cmd.args(["agent", "--config"])
            .arg(&path)
            .env("DOCKER_HOST", docker_host)
            .env("RUST_LOG", "stagesweep=debug")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd.spawn().expect("start the agent");
        AgentProc {
            child,
            port,
            dir,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.yaml")
    }

    /// `GET path` with a 5 s bound on connect, send and receive: `(status, body)`.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http::http_get(self.port, path, Duration::from_secs(5))
    }

    /// `GET path` with an optional `Accept` header, bounded like [`AgentProc::get`].
    pub fn request(&self, path: &str, accept: Option<&str>) -> Option<Response> {
        http::request(self.port, path, accept, Duration::from_secs(5))
    }

    /// The value of the first metric line starting with `line_start`.
    pub fn metric(&self, line_start: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        let line = body.lines().find(|l| l.starts_with(line_start))?;
        line.rsplit(' ').next()?.parse().ok()
    }

    /// `kill -SIG` the agent.
    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// The log so far, without terminal colour codes.
    pub fn log(&self) -> String {
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

    /// Wait until the log holds `needle` `n` times; panics with the log after `limit`.
    pub async fn wait_log(&self, needle: &str, n: usize, limit: Duration) {
        let what = format!("{n}× {needle:?} in the log");
        wait_for(
            &what,
            limit,
            || self.log(),
            || async { self.log().matches(needle).count() >= n },
        )
        .await;
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then the exit status and how long the agent took to exit (panics after 60 s).
    pub fn terminate(mut self) -> (ExitStatus, Duration, String) {
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

    /// [`AgentProc::terminate`], which must end in exit 0: the log.
    pub fn stop(self) -> String {
        let (status, _, log) = self.terminate();
        assert!(status.success(), "agent exit {status}:\n{log}");
        log
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -SIG pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -{sig} {pid} failed");
}

/// Poll `check` every 200 ms until it holds; panics with `what` and `log()` after `limit`.
pub fn wait_until(
    what: &str,
    limit: Duration,
    log: impl Fn() -> String,
    mut check: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}; log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// [`wait_until`] for an async `check`, sleeping on the tokio clock between polls.
pub async fn wait_for<F: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    log: impl Fn() -> String,
    mut check: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
