//! The lock around a state file's load-merge-save (the history): `prune` and the agent both
//! write the history, and each reads what the other wrote, merges it in and writes the
//! result while holding this lock, so neither overwrites the other's records. Held for the
//! milliseconds of a load and a write, never across a pass.
//!
//! The lock is `<state file>.lock` beside the file (the file itself is replaced by a rename
//! at every write, so it cannot carry the lock).

use std::fs::TryLockError;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::lock_file::{self, Create, Held, OpenError};

/// Mode of a state lock file created here: owner read and write, group read (a shared
/// `flock` needs only a read-only descriptor, an exclusive one too).
const CREATED_MODE: u32 = 0o640;
/// How often a busy lock is tried again.
const POLL: Duration = Duration::from_millis(20);

/// Why the state lock could not be taken. Each names the path and the way out.
#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    #[error("cannot open the lock {} of the history file: {source} (make its directory writable by stagesweep, or set history.path)", .path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("the lock {} of the history file was held for more than {}; another stagesweep is writing it (try again)", .path.display(), humantime::format_duration(*.waited))]
    Busy { path: PathBuf, waited: Duration },
    #[error("cannot lock {}: {source} (is it on a file system without lock support? set history.path to a local path)", .path.display())]
    Lock { path: PathBuf, source: io::Error },
}

/// A held state lock; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _held: Held,
}

impl StateLock {
    /// The lock of the state file at `state`, exclusively, waiting at most `timeout`
    /// (blocking the calling thread). The directory must exist.
    pub fn acquire(state: &Path, timeout: Duration) -> Result<StateLock, StateLockError> {
        let path = lock_path(state);
        let how = Create {
            mode: CREATED_MODE,
            strict: false,
            read_write: false,
        };
        let file = lock_file::open(&path, how).map_err(|e| match e {
            OpenError::CreateDir { dir: path, source } | OpenError::Open { path, source } => {
                StateLockError::Open { path, source }
            }
        })?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(StateLock {
                        _held: Held::new(file, &path),
                    });
                }
                Err(TryLockError::WouldBlock) if started.elapsed() < timeout => {
                    std::thread::sleep(POLL);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StateLockError::Busy {
                        path,
                        waited: timeout,
                    });
                }
                Err(TryLockError::Error(source)) => {
                    return Err(StateLockError::Lock { path, source });
                }
            }
        }
    }
}

/// `history.json` → `history.json.lock`.
fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    state.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_waits_then_gives_up_and_gets_it_once_free() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("history.json");
        let first = StateLock::acquire(&state, Duration::ZERO).expect("free");
        assert!(dir.path().join("history.json.lock").is_file());
        let busy = StateLock::acquire(&state, Duration::from_millis(60)).expect_err("held");
        assert!(matches!(busy, StateLockError::Busy { .. }), "{busy:?}");
        assert!(busy.to_string().contains("history.json.lock"), "{busy}");
        drop(first);
        StateLock::acquire(&state, Duration::ZERO).expect("free again");
    }
}
