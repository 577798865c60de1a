//! What an eviction under disk pressure did, measured: the disk before and after each wave,
//! how many candidates it took, and why it stopped. Plain values, filled by the pass and
//! rendered by the report.

use serde::Serialize;

/// Why an eviction stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvictionEnd {
    /// Measured at or below `low`.
    LowReached,
    /// Every candidate was taken (or none was left to take) and the disk is still over
    /// `low`.
    NothingLeft,
    /// The pass was asked to stop, or the engine went away.
    Stopped,
    /// Measuring again failed: the estimate's candidates were deleted, and no more.
    NotMeasured { error: String },
}

/// One wave: candidates whose estimate covered the bytes still to free, then a measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvictionWave {
    /// Candidates in the wave.
    pub images: usize,
    /// Of them, deleted by our calls.
    pub deleted: usize,
    /// The estimate of the bytes the wave's deletions free.
    pub estimated_bytes: u64,
    /// Used, in tenths of a percent, measured before the wave.
    pub used_permille_before: u32,
}

/// How a pass evicted `disk_pressure` candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvictionReport {
    /// What was measured: the path given to `statvfs`, or `api`.
    pub measured: String,
    /// `space` or `inodes`.
    pub resource: String,
    pub high_percent: u8,
    pub low_percent: u8,
    /// Used, in tenths of a percent, when the plan was made.
    pub planned_permille: u32,
    /// Used, in tenths of a percent, at the last measurement (after the last wave).
    pub final_permille: Option<u32>,
    /// Candidates in eviction order, and how many of them the estimate reached.
    pub candidates: usize,
    pub estimated: usize,
    /// Candidates taken into waves (deleted or not).
    pub taken: usize,
    pub waves: Vec<EvictionWave>,
    pub end: EvictionEnd,
    /// Still at or over `high` at the end, with no candidate left: nothing the policies may
    /// evict can relieve the disk.
    pub stuck: bool,
}
