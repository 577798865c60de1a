//! `stagesweep hold -- CMD` as a build meets it: the shared build lock while CMD runs, exit
//! status passthrough, signals forwarded to CMD, `--timeout`, and util-linux `flock -s`
//! holding the same lock. No engine needed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::process::{Pid, Signal, kill_process};
use stagesweep::locks::BuildLock;
use stagesweep::locks::Probe;

fn lock_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let lock = dir.path().join("run/stagesweep/builds.lock");
    (dir, lock)
}

fn hold(lock: &Path, extra: &[&str], command: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stagesweep"));
    cmd.env_remove("STAGESWEEP_CONFIG")
        .env("RUST_LOG", "warn")
        .arg("hold")
        .arg("--lock-file")
        .arg(lock)
        .args(extra)
        .arg("--")
        .args(command)
        .stdin(Stdio::null());
    cmd
}

fn code(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("hold runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().expect("hold exits, it is not killed"),
        stderr,
    )
}

#[test]
fn exit_status_passes_through_and_a_killed_command_gives_128_plus_the_signal() {
    let (_dir, lock) = lock_path();
    assert_eq!(code(&mut hold(&lock, &[], &["sh", "-c", "exit 7"])).0, 7);
    assert_eq!(code(&mut hold(&lock, &[], &["true"])).0, 0);
    assert_eq!(
        code(&mut hold(&lock, &[], &["sh", "-c", "kill -KILL $$"])).0,
        137
    );
    let (status, stderr) = code(&mut hold(&lock, &[], &["/nonexistent/build-tool"]));
    assert_eq!(status, 127, "{stderr}");
    assert!(
        stderr.contains("cannot run /nonexistent/build-tool"),
        "{stderr}"
    );
}

#[test]
fn the_command_holds_the_lock_shared_and_it_is_free_afterwards() {
    let (_dir, lock) = lock_path();
    let script = format!(
        "flock -n -x {0} true && exit 90; flock -n -s {0} true || exit 91; exit 0",
        lock.display()
    );
    let (status, stderr) = code(&mut hold(&lock, &[], &["sh", "-c", &script]));
    assert_eq!(status, 0, "90: not held; 91: not shared\n{stderr}");
    assert!(!BuildLock::is_held(&lock).expect("probe"));
}

/// Start `hold` with a command that reports `ready`, traps TERM and INT, and loops.
fn start_trapping(lock: &Path) -> (Child, BufReader<std::process::ChildStdout>) {
    let script = "trap 'echo got TERM; exit 42' TERM; trap 'echo got INT; exit 43' INT; \
                  echo ready; while :; do sleep 0.1; done";
    let mut child = hold(lock, &[], &["sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("hold starts");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read ready");
    assert_eq!(line, "ready\n");
    (child, out)
}

#[test]
fn sigterm_and_sigint_to_hold_reach_the_command() {
    let (_dir, lock) = lock_path();
    for (signal, expected, status) in [
        (Signal::TERM, "got TERM\n", 42),
        (Signal::INT, "got INT\n", 43),
    ] {
        let (mut child, mut out) = start_trapping(&lock);
        assert!(
            BuildLock::is_held(&lock).expect("probe"),
            "held while running"
        );
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits")).expect("pid");
        kill_process(pid, signal).expect("signal hold");
        let mut line = String::new();
        out.read_line(&mut line).expect("read");
        assert_eq!(line, expected);
        let exit = child.wait().expect("hold exits");
        assert_eq!(exit.code(), Some(status), "CMD's status is hold's");
        assert!(!BuildLock::is_held(&lock).expect("probe"), "released");
    }
}

#[test]
fn timeout_gives_up_with_4_while_a_deletion_batch_holds_the_lock() {
    let (_dir, lock) = lock_path();
    let Probe::Free(batch) = BuildLock::try_exclusive(&lock).expect("lock") else {
        panic!("nobody else holds it");
    };
    let (status, stderr) = code(&mut hold(
        &lock,
        &["--timeout", "200ms"],
        &["sh", "-c", "echo ran; exit 9"],
    ));
    assert_eq!(status, 4, "{stderr}");
    assert!(stderr.contains("--timeout"), "{stderr}");
    drop(batch);
    assert_eq!(
        code(&mut hold(&lock, &["--timeout", "200ms"], &["true"])).0,
        0
    );
}

#[test]
fn util_linux_flock_holds_the_same_lock() {
    let (_dir, lock) = lock_path();
    std::fs::create_dir_all(lock.parent().expect("parent")).expect("dir");
    let mut flock = Command::new("flock")
        .arg("-s")
        .arg(&lock)
        .args(["sh", "-c", "echo locked; read line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock (util-linux) runs");
    let mut out = BufReader::new(flock.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "locked\n");
    assert!(BuildLock::is_held(&lock).expect("probe"), "flock -s counts");
    let (status, _) = code(&mut hold(&lock, &["--timeout", "0s"], &["true"]));
    assert_eq!(status, 0, "shared with another build");
    writeln!(flock.stdin.take().expect("piped")).expect("release");
    assert!(flock.wait().expect("flock exits").success());
    assert!(!BuildLock::is_held(&lock).expect("probe"));
}

#[test]
fn an_unusable_lock_file_is_an_environment_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let (status, stderr) = code(&mut hold(&blocker.join("builds.lock"), &[], &["true"]));
    assert_eq!(status, 5, "{stderr}");
    assert!(stderr.contains("build lock"), "{stderr}");
}

#[test]
fn a_hold_killed_with_sigkill_leaves_the_lock_to_the_build_until_it_ends() {
    let (_dir, lock) = lock_path();
    // The build reports ready, then runs until its stdin closes (the test decides when).
    let mut child = hold(
        &lock,
        &[],
        &["sh", "-c", "echo ready; read line; echo done"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .expect("hold starts");
    let mut stdin = child.stdin.take().expect("piped");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read ready");
    assert_eq!(line, "ready\n");
    child.kill().expect("SIGKILL hold");
    child.wait().expect("hold is gone");
    assert!(
        BuildLock::is_held(&lock).expect("probe"),
        "the build still runs, so it still holds the lock"
    );
    writeln!(stdin, "go").expect("let the build end");
    drop(stdin);
    line.clear();
    out.read_line(&mut line).expect("read done");
    assert_eq!(line, "done\n");
    // The build's shell exits right after printing; the kernel drops the lock with it.
    let released = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        !BuildLock::is_held(&lock).expect("probe")
    });
    assert!(released, "free once the build ended");
}
