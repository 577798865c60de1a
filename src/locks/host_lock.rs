//! The host lock shared by `stagesweep prune`, `apply` and the agent: at most one pass per
//! host.
//!
//! An advisory `flock` on a file (std's `File::lock`/`try_lock`); the lock is released when
//! the [`HostLock`] is dropped or the process dies, so a crash never leaves it stuck. The
//! holder writes its pid into the file so that a busy error can name it. Owns nothing
//! else: callers decide whether to wait, poll or give up.
//!
//! A lock file this module creates is made [`LOCK_FILE_MODE`] whatever the umask (the
//! units run with `UMask=0077`), so that every member of its group — the docker group in
//! the packaged `/run/stagesweep`, which is setgid docker — can take the same lock. Errors
//! never suggest another lock path: a second lock file would defeat the mutual exclusion.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::lock_file::{self, Create, Held, OpenError};

/// Errors from taking the host lock. Each names the path and the way out.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock and the caller asked not to wait.
    #[error("another stagesweep pass{} holds the lock {}; wait for it to finish, or drop --no-wait to wait", holder_suffix(*.holder), .path.display())]
    Busy { path: PathBuf, holder: Option<u32> },
    /// The lock file's directory could not be created.
    #[error("cannot create the lock directory {}: {source}; nothing was deleted (set lock_file: in the config or --lock-file to a path every stagesweep of this host uses, or run as a user who can write {})", .dir.display(), .dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    /// The lock file could not be opened. The hint never suggests another path: every
    /// stagesweep on the host must take this same file.
    #[error("cannot open the lock file {}: {source} (it is shared by every stagesweep pass on this host: run as a member of its group — docker for the packaged /run/stagesweep — or as root, or make it group-readable: chmod 0660 {})", .path.display(), .path.display())]
    Open { path: PathBuf, source: io::Error },
    /// `flock` itself failed.
    #[error("cannot lock {}: {source} (is it on a file system without lock support? set lock_file: or --lock-file to a local path)", .path.display())]
    Lock { path: PathBuf, source: io::Error },
    /// The wait was cancelled (shutdown) before the lock was free.
    #[error("gave up waiting for the lock {}: shutting down", .path.display())]
    Cancelled { path: PathBuf },
}

/// Mode of a lock file this module creates: owner and group read and write.
pub const LOCK_FILE_MODE: u32 = 0o660;

fn holder_suffix(holder: Option<u32>) -> String {
    holder
        .map(|pid| format!(" (pid {pid})"))
        .unwrap_or_default()
}

/// A held host lock; dropping it releases the lock.
#[derive(Debug)]
pub struct HostLock(Held);

impl HostLock {
    /// Take the lock at `path`, creating its parent directory if missing.
    ///
    /// With `wait`, blocks (on a `spawn_blocking` thread) until the lock is free; without,
    /// fails at once with [`LockError::Busy`] when another process holds it.
    pub async fn acquire(path: impl Into<PathBuf>, wait: bool) -> Result<HostLock, LockError> {
        let path = path.into();
        if !wait {
            return Self::try_acquire(&path);
        }
        let task = tokio::task::spawn_blocking(move || Self::acquire_blocking(&path));
        task.await.expect("the lock task does not panic")
    }

    /// Take the lock without waiting.
    pub fn try_acquire(path: &Path) -> Result<HostLock, LockError> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self::held(file, path)),
            Err(TryLockError::WouldBlock) => Err(LockError::Busy {
                path: path.to_owned(),
                holder: read_holder(&file),
            }),
            Err(TryLockError::Error(source)) => Err(LockError::Lock {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Take the lock, blocking the calling thread until it is free.
    pub fn acquire_blocking(path: &Path) -> Result<HostLock, LockError> {
        let file = open(path)?;
        file.lock().map_err(|source| LockError::Lock {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::held(file, path))
    }

    /// Take the lock, polling every `interval` until it is free or `cancel` fires.
    ///
    /// Used by the agent: unlike a blocked thread, a poll can be abandoned at shutdown.
    /// `on_busy` is called once, the first time the lock is found busy.
    pub async fn acquire_polling(
        path: &Path,
        interval: Duration,
        cancel: &CancellationToken,
        mut on_busy: impl FnMut(&LockError),
    ) -> Result<HostLock, LockError> {
        let mut reported = false;
        loop {
            match Self::try_acquire(path) {
                Err(busy @ LockError::Busy { .. }) => {
                    if !reported {
                        on_busy(&busy);
                        reported = true;
                    }
                }
                other => return other,
            }
            tokio::select! {
                () = cancel.cancelled() => {
                    return Err(LockError::Cancelled { path: path.to_owned() });
                }
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// The lock file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    fn held(file: File, path: &Path) -> HostLock {
        let mut held = Held::new(file, path);
        // Best effort: the pid only improves the busy message of others.
        let _ = write_holder(held.file());
        HostLock(held)
    }
}

/// Open (or create, [`LOCK_FILE_MODE`]) the lock file.
fn open(path: &Path) -> Result<File, LockError> {
    let how = Create {
        mode: LOCK_FILE_MODE,
        strict: true,
        read_write: true,
    };
    lock_file::open(path, how).map_err(|e| match e {
        OpenError::CreateDir { dir, source } => LockError::CreateDir { dir, source },
        OpenError::Open { path, source } => LockError::Open { path, source },
    })
}

fn write_holder(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()
}

fn read_holder(file: &File) -> Option<u32> {
    let mut text = String::new();
    let mut reader = file;
    reader.rewind().ok()?;
    reader.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::fs::{self, Permissions};
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn second_try_is_busy_and_names_the_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/dir/stagesweep.lock");
        let first = HostLock::try_acquire(&path).expect("first lock");
        let err = HostLock::try_acquire(&path).expect_err("second lock must be busy");
        match &err {
            LockError::Busy { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(err.to_string().contains(&path.display().to_string()));
        drop(first);
        HostLock::try_acquire(&path).expect("free again after drop");
    }

    #[test]
    fn uncreatable_directory_names_the_path_and_the_way_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").expect("write");
        let path = blocker.join("run/stagesweep.lock");
        let err = HostLock::try_acquire(&path).expect_err("cannot create under a file");
        let text = err.to_string();
        assert!(matches!(err, LockError::CreateDir { .. }), "{err:?}");
        assert!(
            text.contains("--lock-file") && text.contains("lock_file:"),
            "{text}"
        );
        assert!(
            text.contains(&blocker.join("run").display().to_string()),
            "{text}"
        );
    }

    #[test]
    fn a_created_lock_file_is_group_accessible_whatever_the_umask() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("stagesweep.lock");
        // This process's umask (022 or 077) would give 0644 or 0600.
        let lock = HostLock::try_acquire(&path).expect("lock");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, LOCK_FILE_MODE);
        drop(lock);
        // An existing file keeps the mode its owner gave it.
        fs::set_permissions(&path, Permissions::from_mode(0o640)).expect("chmod");
        drop(HostLock::try_acquire(&path).expect("lock again"));
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn an_unopenable_lock_file_names_the_way_out_but_no_other_path() {
        let err = LockError::Open {
            path: PathBuf::from("/run/stagesweep/stagesweep.lock"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let text = err.to_string();
        assert!(
            text.contains("docker") && text.contains("chmod 0660"),
            "{text}"
        );
        assert!(
            !text.contains("--lock-file") && !text.contains("lock_file:"),
            "another lock path defeats the mutual exclusion: {text}"
        );
    }

    #[tokio::test]
    async fn waiting_acquire_gets_the_lock_once_released() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("l");
        let first = HostLock::acquire(&path, false).await.expect("first");
        let waiter = tokio::spawn({
            let path = path.clone();
            async move { HostLock::acquire(path, true).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "must wait while the lock is held");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("acquired within 5s")
            .expect("task");
        assert!(second.is_ok());
    }

    #[tokio::test]
    async fn polling_acquire_reports_busy_once_and_honours_cancel() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("l");
        let _held = HostLock::try_acquire(&path).expect("first");
        let cancel = CancellationToken::new();
        let mut busy = 0;
        let canceller = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(120)).await;
                cancel.cancel();
            })
        };
        let res =
            HostLock::acquire_polling(&path, Duration::from_millis(10), &cancel, |_| busy += 1)
                .await;
        canceller.await.expect("canceller");
        assert!(matches!(res, Err(LockError::Cancelled { .. })), "{res:?}");
        assert_eq!(busy, 1);
    }
}
