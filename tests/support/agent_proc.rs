//! `stagesweep agent` as a child process for fault tests: its config in a temp dir, its log,
//! one-shot HTTP GETs against its listener (each bounded in time), SIGTERM and exit.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A running agent; killed on drop if still running.
pub struct AgentProc {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl AgentProc {
    /// Start `stagesweep agent` with `config` (YAML; `{port}` and `{dir}` are replaced by the
    /// metrics port and the agent's temp dir) against `docker_host`.
    pub fn start(config: &str, docker_host: &str) -> AgentProc {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut text = config
            .replace("{port}", &port.to_string())
            .replace("{dir}", &dir.path().display().to_string());
        // The agent keeps a history and takes the build lock to delete: this one's are the
        // test's own, never the host's (another test's agent or prune would share them).
        let has =
            |text: &str, key: &str| text.starts_with(key) || text.contains(&format!("\n{key}"));
        if !has(&text, "history:") {
            let history = dir.path().join("state/history.json");
            let _ = writeln!(text, "history:\n  path: {}", history.display());
        }
        if !has(&text, "builds:") {
            let lock = dir.path().join("builds.lock");
            let _ = writeln!(text, "builds:\n  lock_file: {}", lock.display());
        }
        let path = dir.path().join("agent.yaml");
        std::fs::write(&path, text).expect("write the agent config");
        let log = dir.path().join("agent.log");
        let child = Command::new(env!("CARGO_BIN_EXE_stagesweep"))
            .args(["agent", "--config"])
            .arg(&path)
            .env("DOCKER_HOST", docker_host)
            .env("RUST_LOG", "stagesweep=debug")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the agent");
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
        http_get(self.port, path, Duration::from_secs(5))
    }

    /// The value of the first metric line starting with `line_start`.
    pub fn metric(&self, line_start: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        let line = body.lines().find(|l| l.starts_with(line_start))?;
        line.rsplit(' ').next()?.parse().ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then the exit status and how long the agent took to exit (panics after 60 s).
    pub fn terminate(mut self) -> (ExitStatus, Duration, String) {
        signal(self.child.id(), "TERM");
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

/// One `GET` on `127.0.0.1:port`, every step bounded by `limit`.
pub fn http_get(port: u16, path: &str, limit: Duration) -> Option<(u16, String)> {
    let addr = ("127.0.0.1", port);
    let mut s = TcpStream::connect_timeout(
        &std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .ok()?
            .next()?,
        limit,
    )
    .ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.set_write_timeout(Some(limit)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
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

/// The path of the stagesweep binary under test.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_stagesweep"))
}
