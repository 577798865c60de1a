//! The built `stagesweep` binary as the tests run it: with nothing from the caller's
//! environment that changes what it reads or logs, with a configuration of the test's own
//! (its own locks, no history), bounded in time; and its `--output json` report.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

/// `stagesweep` (`assert_cmd`) without `STAGESWEEP_CONFIG` or `RUST_LOG` from the caller's
/// environment; killed after 60 s.
pub fn stagesweep() -> Command {
    let mut cmd = Command::cargo_bin("stagesweep").expect("the binary is built for tests");
    cmd.env_remove("STAGESWEEP_CONFIG")
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(60));
    cmd
}

/// `stagesweep --config CONFIG`, logging warnings only; killed after 120 s.
pub fn with_config(config: &Path) -> Command {
    let mut cmd = stagesweep();
    cmd.env("RUST_LOG", "warn")
        .arg("--config")
        .arg(config)
        .timeout(Duration::from_secs(120));
    cmd
}

/// Write `dir/config.yaml`: no history, the pass lock `dir/run/stagesweep.lock` and the build
/// lock `dir/run/builds.lock` (never the host's), then `yaml` (policies, rules, …).
pub fn config_file(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let text = format!(
        "history:\n  enabled: false\nlock_file: {}\nbuilds:\n  lock_file: {}\n{yaml}",
        dir.join("run/stagesweep.lock").display(),
        dir.join("run/builds.lock").display(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// `stagesweep --config CONFIG prune --output json` against `docker_host`, logging at
/// `rust_log`; it must exit 0: the report and stderr.
pub fn prune_json(config: &Path, docker_host: &str, rust_log: &str) -> (Value, String) {
    let out = with_config(config)
        .args(["prune", "--output", "json"])
        .env("DOCKER_HOST", docker_host)
        .env("RUST_LOG", rust_log)
        .output()
        .expect("run stagesweep prune");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "prune failed: {stderr}");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (doc, stderr)
}

/// The output of a command that must have exited 0, its stdout one JSON document.
pub fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stagesweep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// Run `cmd`: its exit code, its stdout as JSON (null when it is not), its stderr.
pub fn run_json(cmd: &mut Command) -> (i32, Value, String) {
    let out = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc, stderr)
}

/// The entry of image `id` in a report's `images[]`.
pub fn entry<'a>(doc: &'a Value, id: &str) -> &'a Value {
    (doc["images"].as_array().expect("images"))
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {doc}"))
}

/// How a bounded run ended.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// `stagesweep ARGS --config CONFIG` without `DOCKER_HOST` (the config names the engine), on
/// tokio; after `limit` it is killed and the test fails, saying the run `what` (hung, spun).
pub async fn run_bounded(args: &[&str], config: &Path, limit: Duration, what: &str) -> Finished {
    let started = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stagesweep"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("DOCKER_HOST")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(limit, child)
        .await
        .unwrap_or_else(|_| panic!("stagesweep {args:?} {what} for {limit:?}"))
        .expect("run stagesweep");
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// `stagesweep ARGS` (`--config CONFIG` when given, `DOCKER_HOST` only when given) whose
/// stdout is a pipe nobody reads any more (`| true`: the reading end is closed before it
/// starts, so its first write fails with EPIPE), bounded by `limit`; `stdout` is always
/// empty.
pub async fn run_closed_stdout(
    args: &[&str],
    config: Option<&Path>,
    docker_host: Option<&str>,
    limit: Duration,
) -> Finished {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_stagesweep"));
    cmd.args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("STAGESWEEP_CONFIG")
        .env("RUST_LOG", "warn")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    // Not `output()`: it would replace stdout with a pipe of its own.
    let child = cmd.spawn().expect("run stagesweep");
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("stagesweep {args:?} with a closed stdout hung for {limit:?}"))
        .expect("wait for stagesweep");
    Finished {
        code: out.status.code(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}
