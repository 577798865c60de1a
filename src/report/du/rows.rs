//! The rows of a `du` report and the states its bytes are in, as they serialize in JSON
//! (docs/output.md, "stagesweep du").

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// One group's images: the bytes only they hold.
    Images,
    /// The groups beyond `--top`, summed.
    Other,
    /// Layers that images of different groups (or without a common parent) share, once.
    Shared,
    /// BuildKit's cache records that no image shares.
    BuildCache,
}

/// Where an image's (or record's) bytes stand in the plan made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A pass now would delete it.
    Reclaimable,
    /// Only a `when: disk_pressure` policy would take it, once the disk is over `high`.
    Pressure,
    /// In use by a container, the parent of one, or protected by a reference or label.
    Protected,
    /// Everything else: younger than `min_age`, retained, matched by no policy, shared.
    Kept,
}

impl State {
    /// Every state, in the order of the columns.
    pub const ALL: [State; 4] = [
        State::Reclaimable,
        State::Pressure,
        State::Protected,
        State::Kept,
    ];

    /// The name in JSON and in metric labels.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            State::Reclaimable => "reclaimable",
            State::Pressure => "pressure",
            State::Protected => "protected",
            State::Kept => "kept",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuRow {
    /// The group's name (the label value, repository or policy; `other`, `shared`,
    /// `build cache` for the other kinds).
    pub group: String,
    pub kind: RowKind,
    /// Images in the group (cache records for the build cache, 0 for `shared`).
    pub count: usize,
    /// Bytes counted once; the four states below add up to it.
    pub bytes: u64,
    pub reclaimable_bytes: u64,
    pub pressure_bytes: u64,
    pub protected_bytes: u64,
    pub kept_bytes: u64,
    /// The least recent last use in the group (history; the records' own for the build
    /// cache); `null` when unknown.
    pub oldest_last_use: Option<DateTime<Utc>>,
}

impl DuRow {
    /// An empty row.
    #[must_use]
    pub fn new(group: impl Into<String>, kind: RowKind) -> Self {
        Self {
            group: group.into(),
            kind,
            count: 0,
            bytes: 0,
            reclaimable_bytes: 0,
            pressure_bytes: 0,
            protected_bytes: 0,
            kept_bytes: 0,
            oldest_last_use: None,
        }
    }

    /// Count `bytes` in `state`, used last at `last_use`.
    pub fn add(&mut self, state: State, bytes: u64, last_use: Option<DateTime<Utc>>) {
        self.count += 1;
        self.bytes += bytes;
        *self.state_mut(state) += bytes;
        self.oldest_last_use = match (self.oldest_last_use, last_use) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Fold another row into this one.
    pub fn absorb(&mut self, other: &DuRow) {
        for state in State::ALL {
            *self.state_mut(state) += other.state_bytes(state);
        }
        self.count += other.count;
        self.bytes += other.bytes;
        self.oldest_last_use = match (self.oldest_last_use, other.oldest_last_use) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// The bytes in `state`.
    #[must_use]
    pub fn state_bytes(&self, state: State) -> u64 {
        match state {
            State::Reclaimable => self.reclaimable_bytes,
            State::Pressure => self.pressure_bytes,
            State::Protected => self.protected_bytes,
            State::Kept => self.kept_bytes,
        }
    }

    fn state_mut(&mut self, state: State) -> &mut u64 {
        match state {
            State::Reclaimable => &mut self.reclaimable_bytes,
            State::Pressure => &mut self.pressure_bytes,
            State::Protected => &mut self.protected_bytes,
            State::Kept => &mut self.kept_bytes,
        }
    }
}

/// The whole report: `--output json` prints it as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuReport {
    /// The grouping: `policy`, `repo` or `label:<key>`.
    pub by: String,
    /// The time planned for, on the engine's clock.
    pub planned_at: DateTime<Utc>,
    /// Image groups by bytes (largest first, ties by name), then `other`, `shared` and
    /// `build cache`; their `bytes` add up to `total_bytes`.
    pub groups: Vec<DuRow>,
    pub total_bytes: u64,
    /// What the engine's data usage says it holds (`LayersSize` plus the build cache records
    /// no image shares); `null` when it does not tell its layers' total.
    pub engine_total_bytes: Option<u64>,
    /// What the figures lack, and how they were counted when that matters.
    pub notes: Vec<String>,
}
