//! The external tools the docs name, run as a reader would: promtool on an exposition or on
//! the alerting rules, systemd-analyze on the units. scripts/install-deps.sh installs them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// What a tool said: its stdout, then its stderr.
pub fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `cmd` with `stdin` on its standard input: (clean exit, stdout + stderr). `what` says
/// how to install it when it cannot start.
pub fn run(cmd: &mut Command, stdin: &str, what: &str) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write to the tool's stdin");
    let out = child.wait_with_output().expect("the tool runs");
    (out.status.success(), said(&out))
}

/// `promtool ARGS` in `dir`, `stdin` on its standard input: (clean exit, what it said).
pub fn promtool(args: &[&str], stdin: &str, dir: &Path) -> (bool, String) {
    run(
        Command::new("promtool").args(args).current_dir(dir),
        stdin,
        "promtool is installed (scripts/install-deps.sh: apt-get install prometheus)",
    )
}

/// `promtool check metrics` on an exposition: (clean exit, what it said).
pub fn check_metrics(text: &str) -> (bool, String) {
    promtool(
        &["check", "metrics"],
        text,
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
}

/// `systemd-analyze ARGS` in `dir`: (clean exit, what it said).
pub fn systemd_analyze(args: &[&str], dir: &Path) -> (bool, String) {
    run(
        Command::new("systemd-analyze").args(args).current_dir(dir),
        "",
        "systemd-analyze is installed (apt-get install systemd)",
    )
}
