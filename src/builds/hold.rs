//! `stagesweep hold -- CMD`: run a build while holding the build lock **shared**.
//!
//! The lock is taken before CMD starts and CMD inherits it (its descriptor is not closed on
//! exec, as with flock(1)): it lives until both this process and CMD (and whatever CMD left
//! running with the descriptor) have ended, so a `hold` killed with SIGKILL does not release
//! it while the build goes on, and the kernel drops it when the last holder dies, so it never
//! goes stale. CMD inherits stdin, stdout and stderr.
//! SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to CMD, except SIGINT
//! and SIGQUIT while this process runs in the foreground of a terminal: the terminal sends
//! those to CMD itself. The exit status is CMD's, or 128 + N when signal N ended it.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::exit;
use crate::locks::{BuildLock, BuildLockError};

/// How often a hold waiting for a deletion batch checks the lock again.
const POLL: Duration = Duration::from_millis(100);

/// The signals forwarded to CMD; `true` marks those a terminal sends to CMD as well.
const FORWARDED: [(SignalKind, Signal, bool); 6] = [
    (SignalKind::terminate(), Signal::TERM, false),
    (SignalKind::interrupt(), Signal::INT, true),
    (SignalKind::hangup(), Signal::HUP, false),
    (SignalKind::quit(), Signal::QUIT, true),
    (SignalKind::user_defined1(), Signal::USR1, false),
    (SignalKind::user_defined2(), Signal::USR2, false),
];

/// Why `hold` could not run CMD to the end. Each has its own exit status.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(transparent)]
    Lock(#[from] BuildLockError),
    /// CMD could not be started.
    #[error("cannot run {program}: {source} (is it installed and on PATH?)")]
    Spawn { program: String, source: io::Error },
    /// A signal handler could not be installed, or waiting for CMD failed.
    #[error("cannot supervise the command: {0}")]
    Supervise(io::Error),
}

impl HoldError {
    /// 4 when a deletion batch kept the lock past `--timeout`, 127 when CMD does not exist,
    /// 126 when it cannot be run, 5 for other environment errors (as shells and `env` do).
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            HoldError::Lock(BuildLockError::Timeout { .. }) => exit::LOCKED,
            HoldError::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            HoldError::Spawn { .. } => 126,
            HoldError::Lock(_) | HoldError::Supervise(_) => exit::ENVIRONMENT,
        }
    }
}

/// Run `command` (program and arguments) while holding the build lock at `lock_file` shared,
/// waiting at most `timeout` for it (`None`: as long as a deletion batch takes). Returns the
/// exit status to end with.
pub async fn hold(
    lock_file: &Path,
    timeout: Option<Duration>,
    command: &[OsString],
) -> Result<i32, HoldError> {
    let Some((program, args)) = command.split_first() else {
        return Ok(exit::OK);
    };
    let lock = BuildLock::shared(lock_file, timeout, POLL).await?;
    lock.inherit_on_exec().map_err(HoldError::Supervise)?;
    tracing::debug!(path = %lock.path().display(), "holding the build lock shared (the command inherits it)");
    // Handlers first: a signal that arrives before CMD runs is forwarded once it does.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut listeners = Vec::with_capacity(FORWARDED.len());
    for (kind, sig, from_terminal) in FORWARDED {
        let mut stream = signal(kind).map_err(HoldError::Supervise)?;
        let tx = tx.clone();
        listeners.push(tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if from_terminal && in_terminal_foreground() {
                    continue;
                }
                if tx.send(sig).is_err() {
                    return;
                }
            }
        }));
    }
    let spawned = tokio::process::Command::new(program).args(args).spawn();
    let mut child = spawned.map_err(|source| HoldError::Spawn {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            Some(sig) = rx.recv() => forward(pid, sig),
        }
    };
    for listener in listeners {
        listener.abort();
    }
    drop(lock);
    Ok(exit_status(status.map_err(HoldError::Supervise)?))
}

fn forward(pid: Option<Pid>, sig: Signal) {
    let Some(pid) = pid else { return };
    tracing::debug!(signal = ?sig, pid = pid.as_raw_nonzero(), "forwarding a signal to the command");
    // The command may have exited in the meantime; its status is collected next.
    let _ = rustix::process::kill_process(pid, sig);
}

/// True when this process group is the foreground group of the terminal on stdin.
fn in_terminal_foreground() -> bool {
    rustix::termios::tcgetpgrp(io::stdin()).is_ok_and(|fg| fg == rustix::process::getpgrp())
}

/// CMD's exit code, or 128 + N when signal N ended it (as shells report it).
fn exit_status(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_the_code_or_128_plus_the_signal() {
        assert_eq!(exit_status(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_status(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_status(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn hold_errors_have_distinct_exit_codes() {
        let missing = HoldError::Spawn {
            program: "nope".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let denied = HoldError::Spawn {
            program: "nope".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let timeout = HoldError::Lock(BuildLockError::Timeout {
            path: "/run/stagesweep/builds.lock".into(),
            waited: Duration::from_secs(5),
        });
        let codes = [missing.exit_code(), denied.exit_code(), timeout.exit_code()];
        assert_eq!(codes, [127, 126, exit::LOCKED]);
        assert!(missing.to_string().contains("PATH"), "{missing}");
    }

    #[tokio::test]
    async fn the_command_runs_under_the_shared_lock_and_its_status_passes_through() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = dir.path().join("builds.lock");
        let script = format!(
            "flock -n -x {0} true && exit 90; flock -n -s {0} true || exit 91; exit 7",
            lock.display()
        );
        let command: Vec<OsString> = ["sh", "-c", &script].map(OsString::from).to_vec();
        let code = hold(&lock, None, &command).await.expect("runs");
        assert_eq!(code, 7, "90: not held; 91: not shared");
        assert!(!BuildLock::is_held(&lock).expect("probe"), "released after");
    }
}
