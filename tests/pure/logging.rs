//! Log lines as journald, `docker logs` and log files see them: no colour codes when stderr
//! is not a terminal (whatever `NO_COLOR` says), and the journal's format (a `<N>` priority
//! prefix, no timestamp) only when `JOURNAL_STREAM` names the file stderr really is.
//! The agent is pointed at a socket that does not exist, so it logs without an engine.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run the agent with stderr to `dir/stderr.log` and `env` set until it has said docker is
/// unreachable, stop it with SIGTERM; returns the log.
fn agent_log(dir: &Path, flags: &[&str], env: &[(&str, String)]) -> String {
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n\
             lock_file: {}\nmetrics:\n  enabled: false\nhistory:\n  enabled: false\n",
            dir.join("lock").display()
        ),
    )
    .expect("write config");
    let log = dir.join("stderr.log");
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stagesweep"));
    cmd.arg("agent")
        .args(flags)
        .arg("--config")
        .arg(&config)
        .env(
            "DOCKER_HOST",
            format!("unix://{}", dir.join("none.sock").display()),
        )
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the agent");
    let started = Instant::now();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    while !read().contains("docker is unreachable") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the agent did not report docker unreachable:\n{}",
            read()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM: the agent logs its shutdown at info, then exits.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit {status}:\n{}", read());
    read()
}

fn dev_ino(path: &Path) -> String {
    let meta = std::fs::metadata(path).expect("stat");
    format!("{}:{}", meta.dev(), meta.ino())
}

#[test]
fn no_escape_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = agent_log(dir.path(), &[], &[]);
    assert!(!log.contains('\u{1b}'), "escape codes in:\n{log:?}");
    let warn = log
        .lines()
        .find(|l| l.contains("docker is unreachable"))
        .expect("the warning");
    assert!(
        warn.starts_with("20") && warn.contains(" WARN "),
        "a timestamped plain line: {warn:?}"
    );
}

#[test]
fn journal_format_when_journal_stream_names_stderr() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Create the log first so that its device and inode can be named in JOURNAL_STREAM, as
    // systemd does for the stream socket it connects to stderr.
    let log_path = dir.path().join("stderr.log");
    std::fs::write(&log_path, "").expect("create log");
    let stream = dev_ino(&log_path);
    let log = agent_log(dir.path(), &[], &[("JOURNAL_STREAM", stream)]);
    assert!(!log.contains('\u{1b}'), "escape codes in:\n{log:?}");
    assert!(!log.is_empty());
    for line in log.lines() {
        let (prefix, rest) = line.split_at(3);
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&prefix),
            "no priority prefix: {line:?}"
        );
        assert!(
            !rest.trim_start().starts_with("20"),
            "journald adds the timestamp, the line must not: {line:?}"
        );
    }
    let warn = log
        .lines()
        .find(|l| l.contains("docker is unreachable"))
        .expect("the warning");
    assert!(warn.starts_with("<4>"), "a warning is priority 4: {warn:?}");
    assert!(
        log.lines().any(|l| l.starts_with("<6>")),
        "info lines are priority 6:\n{log}"
    );
}

#[test]
fn an_inherited_journal_stream_for_another_file_is_ignored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let other = dir.path().join("other");
    std::fs::write(&other, "").expect("create");
    let log = agent_log(dir.path(), &[], &[("JOURNAL_STREAM", dev_ino(&other))]);
    assert!(
        log.lines().all(|l| l.starts_with("20")),
        "plain timestamped lines:\n{log}"
    );
}

#[test]
fn quiet_and_verbose_win_over_rust_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let debug = [("RUST_LOG", "stagesweep=debug".to_owned())];
    let quiet = agent_log(dir.path(), &["-q"], &debug);
    assert!(
        quiet
            .lines()
            .all(|l| l.contains(" WARN ") || l.contains(" ERROR ")),
        "-q: warnings and errors only:\n{quiet}"
    );
    let normal = agent_log(dir.path(), &[], &debug);
    assert!(
        normal.contains(" DEBUG "),
        "RUST_LOG applies without flags:\n{normal}"
    );
    let warn_only = [("RUST_LOG", "warn".to_owned())];
    let verbose = agent_log(dir.path(), &["-v"], &warn_only);
    assert!(
        verbose.contains(" DEBUG ") && verbose.contains(" INFO "),
        "-v: stagesweep's debug lines:\n{verbose}"
    );
}
