//! Process exit codes (documented in docs/output.md).

/// Nothing failed (also when nothing matched).
pub const OK: i32 = 0;
/// Some deletions failed.
pub const DELETIONS_FAILED: i32 = 1;
/// Configuration or usage error.
pub const CONFIG: i32 = 2;
/// The engine could not be reached.
pub const UNREACHABLE: i32 = 3;
/// Another pass holds the host lock and `--no-wait` was given.
pub const LOCKED: i32 = 4;
/// The environment failed us: the lock file cannot be taken, an I/O error, a listener that
/// cannot bind, an internal error. Nothing was deleted because of it.
pub const ENVIRONMENT: i32 = 5;
