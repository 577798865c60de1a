//! The two lock files: the host lock (at most one pass per host: `prune`, `apply` and the
//! agent take it) and the build lock (builds hold it shared, deletions take it exclusively
//! without waiting). Both are advisory `flock`s on the mechanics of [`lock_file`].

pub mod build_lock;
pub mod host_lock;
mod lock_file;

pub use build_lock::{BuildLock, BuildLockError, Probe};
pub use host_lock::{HostLock, LOCK_FILE_MODE, LockError};
