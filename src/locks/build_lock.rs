//! The build lock: one file that builds hold **shared** (`stagesweep hold`, `flock -s`) and
//! deletions take **exclusively, without waiting**.
//!
//! An advisory `flock` (std's `File::lock_shared`/`try_lock`), so util-linux `flock -s` holds
//! the same lock and the kernel releases it when a holder dies: nothing goes stale. A file
//! created here is made readable by everyone (`0644`, whatever the umask), because a shared
//! lock only needs a read-only descriptor; tighten it with a tmpfiles.d entry (see docs/builds.md).
//! Separate from the host lock ([`super::host_lock`]): builds never touch that one.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::lock_file::{self, Create, Held, OpenError};

/// Mode of a build lock file created by stagesweep: any user who may build can `flock -s` it.
const CREATED_MODE: u32 = 0o644;

/// Errors from the build lock. Each names the path and the way out.
#[derive(Debug, thiserror::Error)]
pub enum BuildLockError {
    /// The lock file's directory does not exist and cannot be created.
    #[error("cannot create the build lock directory {}: {source}; nothing was deleted (create it, e.g. with the tmpfiles.d entry from docs/builds.md, or set builds.lock_file: / --lock-file to a path in a directory builds share; on a host where nothing builds, builds.lock: false)", .dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    /// The lock file cannot be opened (or created).
    #[error("cannot open the build lock {}: {source} (builds and stagesweep must both be able to read it: create it readable by the docker group, e.g. with the tmpfiles.d entry from docs/builds.md)", .path.display())]
    Open { path: PathBuf, source: io::Error },
    /// `flock` itself failed.
    #[error("cannot lock {}: {source} (is it on a file system without lock support? set builds.lock_file: / --lock-file to a local path such as /run/stagesweep/builds.lock)", .path.display())]
    Lock { path: PathBuf, source: io::Error },
    /// A deletion batch kept the lock longer than the caller would wait.
    #[error("a stagesweep deletion batch held the build lock {} for longer than {}; try again, or raise --timeout", .path.display(), humantime::format_duration(*.waited))]
    Timeout { path: PathBuf, waited: Duration },
}

/// A held build lock (shared or exclusive); dropping it releases the lock.
#[derive(Debug)]
pub struct BuildLock(Held);

/// What a deleter found when it tried the build lock.
#[derive(Debug)]
pub enum Probe {
    /// No build holds it: deletions may run while this is held.
    Free(BuildLock),
    /// A build holds it (or another pass is deleting).
    Held,
}

impl BuildLock {
    /// Take the lock exclusively without waiting (deletions).
    pub fn try_exclusive(path: &Path) -> Result<Probe, BuildLockError> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Probe::Free(BuildLock(Held::new(file, path)))),
            Err(TryLockError::WouldBlock) => Ok(Probe::Held),
            Err(TryLockError::Error(source)) => Err(BuildLockError::Lock {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// True when a build holds the lock now; the probe's own lock is released at once.
    pub fn is_held(path: &Path) -> Result<bool, BuildLockError> {
        Ok(matches!(Self::try_exclusive(path)?, Probe::Held))
    }

    /// Take the lock shared (builds), polling every `poll` while a deletion batch holds it
    /// exclusively; give up after `timeout` (`None`: wait as long as it takes).
    pub async fn shared(
        path: &Path,
        timeout: Option<Duration>,
        poll: Duration,
    ) -> Result<BuildLock, BuildLockError> {
        let file = open(path)?;
        let started = tokio::time::Instant::now();
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Ok(BuildLock(Held::new(file, path))),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(source)) => {
                    return Err(BuildLockError::Lock {
                        path: path.to_owned(),
                        source,
                    });
                }
            }
            let waited = started.elapsed();
            let nap = match timeout {
                Some(limit) if waited >= limit => {
                    return Err(BuildLockError::Timeout {
                        path: path.to_owned(),
                        waited: limit,
                    });
                }
                Some(limit) => poll.min(limit.saturating_sub(waited)),
                None => poll,
            };
            if waited.is_zero() {
                tracing::info!(path = %path.display(), "a stagesweep deletion batch holds the build lock; waiting for it");
            }
            tokio::time::sleep(nap).await;
        }
    }

    /// The lock file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Let the command `stagesweep hold` starts inherit the lock, so that it lives as long
    /// as the build does even when `hold` itself is killed (as flock(1) does).
    pub fn inherit_on_exec(&self) -> io::Result<()> {
        self.0.inherit_on_exec()
    }
}

/// Open the lock file, creating its directory and the file (mode 0644) when missing. An
/// existing file is opened read-only: `flock` needs no more, in either mode.
fn open(path: &Path) -> Result<File, BuildLockError> {
    let how = Create {
        mode: CREATED_MODE,
        // Best effort: without it only builds of other users lose access.
        strict: false,
        read_write: false,
    };
    lock_file::open(path, how).map_err(|e| match e {
        OpenError::CreateDir { dir, source } => BuildLockError::CreateDir { dir, source },
        OpenError::Open { path, source } => BuildLockError::Open { path, source },
    })
}

#[cfg(test)]
mod tests {
    use std::fs::{self, Permissions};
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp_lock() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run/stagesweep/builds.lock");
        (dir, path)
    }

    #[tokio::test]
    async fn shared_holders_coexist_and_keep_deletions_out() {
        let (_dir, path) = temp_lock();
        let poll = Duration::from_millis(10);
        let a = BuildLock::shared(&path, Some(Duration::ZERO), poll)
            .await
            .expect("first build");
        let b = BuildLock::shared(&path, Some(Duration::ZERO), poll)
            .await
            .expect("a second build shares it");
        assert!(matches!(BuildLock::try_exclusive(&path), Ok(Probe::Held)));
        drop(a);
        assert!(
            BuildLock::is_held(&path).expect("probe"),
            "b still holds it"
        );
        drop(b);
        assert!(matches!(
            BuildLock::try_exclusive(&path),
            Ok(Probe::Free(_))
        ));
        assert!(!BuildLock::is_held(&path).expect("probe"));
    }

    #[test]
    fn a_created_lock_file_is_readable_by_everyone_whatever_the_umask() {
        let (_dir, path) = temp_lock();
        let held = BuildLock::try_exclusive(&path).expect("lock");
        assert!(matches!(held, Probe::Free(_)));
        let mode = fs::metadata(&path).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, CREATED_MODE);
    }

    #[test]
    fn an_existing_read_only_file_can_be_locked_both_ways() {
        let (_dir, path) = temp_lock();
        fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        fs::write(&path, b"").expect("file");
        fs::set_permissions(&path, Permissions::from_mode(0o444)).expect("chmod");
        let held = BuildLock::try_exclusive(&path).expect("exclusive on a read-only fd");
        assert!(matches!(held, Probe::Free(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn shared_waits_for_a_deletion_batch_then_times_out_or_gets_it() {
        let (_dir, path) = temp_lock();
        let Probe::Free(batch) = BuildLock::try_exclusive(&path).expect("lock") else {
            panic!("nobody else holds it");
        };
        let poll = Duration::from_millis(100);
        let err = BuildLock::shared(&path, Some(Duration::from_secs(2)), poll)
            .await
            .expect_err("the batch holds it");
        assert!(matches!(err, BuildLockError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains("--timeout"), "{err}");
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(batch);
        });
        let started = tokio::time::Instant::now();
        let held = BuildLock::shared(&path, None, poll)
            .await
            .expect("after release");
        assert!(started.elapsed() >= Duration::from_secs(3));
        assert_eq!(held.path(), path);
        release.await.expect("release task");
    }

    #[test]
    fn an_uncreatable_directory_names_the_path_and_the_way_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").expect("write");
        let err = BuildLock::try_exclusive(&blocker.join("run/builds.lock"))
            .expect_err("cannot create under a file");
        assert!(matches!(err, BuildLockError::CreateDir { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("builds.lock_file:") && text.contains("tmpfiles.d"),
            "{text}"
        );
    }
}
