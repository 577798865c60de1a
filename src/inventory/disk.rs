//! One measurement of the disk images live on, as a plain value: capacity, available bytes
//! and inodes, and the used ratios kubelet's way (`used = 1 − available/capacity`: blocks
//! reserved for root count as used, so this is higher than `df`'s Use%).
//!
//! Measuring (`statvfs`, or the image-bytes budget) is the pass's job; comparing with the
//! watermarks is the planner's.

use serde::Serialize;

/// One measurement of the filesystem (or budget) images live on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// What was measured: a path, or `api` for the image-bytes budget.
    pub source: String,
    /// Capacity in bytes (`f_blocks · f_frsize`, or `max_images_bytes`).
    pub capacity_bytes: u64,
    /// Bytes available to unprivileged users (`f_bavail · f_frsize`, or budget − images).
    pub available_bytes: u64,
    /// Inodes in total and free (`f_files`, `f_ffree`); `None` when the filesystem does not
    /// count them (btrfs reports 0) or for the api budget.
    pub inodes: Option<(u64, u64)>,
}

impl DiskUsage {
    /// kubelet's used ratio: `1 − available/capacity` (0 for an empty capacity).
    #[must_use]
    pub fn used_ratio(&self) -> f64 {
        ratio_used(self.available_bytes, self.capacity_bytes)
    }

    /// `1 − f_ffree/f_files`, when the filesystem counts inodes.
    #[must_use]
    pub fn inodes_used_ratio(&self) -> Option<f64> {
        self.inodes
            .filter(|(total, _)| *total > 0)
            .map(|(total, free)| ratio_used(free, total))
    }
}

/// `1 − available/capacity`, at most 1 (0 for an empty capacity).
#[must_use]
#[allow(clippy::cast_precision_loss)] // ratios of byte counts: 53 bits are plenty.
pub fn ratio_used(available: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        return 0.0;
    }
    1.0 - available.min(capacity) as f64 / capacity as f64
}
