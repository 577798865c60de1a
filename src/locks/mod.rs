//! The lock files: the host lock (at most one pass per host: `prune`, `apply` and the agent
//! take it), the build lock (builds hold it shared, deletions take it exclusively without
//! waiting) and the state lock (around the history's load-merge-save). All are advisory
//! `flock`s on the mechanics of [`lock_file`].

pub mod build_lock;
pub mod host_lock;
mod lock_file;
pub mod state_lock;

pub use build_lock::{BuildLock, BuildLockError, Probe};
pub use host_lock::{HostLock, LOCK_FILE_MODE, LockError};
pub use state_lock::{StateLock, StateLockError};
