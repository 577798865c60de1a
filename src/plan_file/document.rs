//! The plan file: the JSON document `plan --output json` (and `prune --output json`)
//! writes, and `stagesweep apply` reads back — one set of types for both directions.
//!
//! Written from borrowed values (at 100k images the document is tens of MB: nothing is
//! copied); read back owned. Fields only people and tools read (the summary, the outcomes,
//! the texts) are written and not read back; what `apply` needs is read and checked
//! (`read`). Field names are stable; [`JSON_VERSION`] is bumped on incompatible changes.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::builds::BuildWait;
use crate::execute::{CacheOutcome, EvictionReport, Outcome, Summary, UnplannedRemoval};
use crate::history::Record;
use crate::inventory::{CacheType, DiskUsage, ImageId};
use crate::plan::build_cache::CacheReason;
use crate::plan::{Action, Reason};

/// Version of the JSON document's layout; bumped on incompatible changes. Version 2: the
/// engine ID and plan time (a plan file for `apply`), digests, parents, tag times, waves and
/// estimates per deletion; `untagged_only` outcomes; no cascades.
pub const JSON_VERSION: u32 = 2;

/// The JSON document (`--output json`). It is also the plan file that `stagesweep apply`
/// reads. `I` is the images: a list when read back; when written, anything that writes as
/// the same list (the report writes them one at a time, without holding them all).
#[derive(Debug, Serialize, Deserialize)]
pub struct Document<'a, I = Vec<FileImage<'a>>> {
    pub version: u32,
    pub dry_run: bool,
    /// The engine the plan was made for (`/info` ID).
    pub engine_id: Cow<'a, str>,
    /// The time the plan was made for, on the engine's clock.
    pub planned_at: DateTime<Utc>,
    /// Counts over the pass (written, not read back).
    #[serde(skip_deserializing)]
    pub summary: Option<&'a Summary>,
    #[serde(default)]
    pub reclaimable_bytes: u64,
    /// How the deletions waited for builds; null when the pass did not ask (written, not
    /// read back).
    #[serde(skip_deserializing)]
    pub builds: Option<&'a BuildWait>,
    /// The disk measurement the plan used, when a `when: disk_pressure` policy needed one
    /// (written, not read back).
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub disk: Option<&'a DiskUsage>,
    /// How the pass evicted under disk pressure, measured wave by wave (written, not read
    /// back; absent when it did not).
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub eviction: Option<&'a EvictionReport>,
    /// False when the engine gave no layer-sharing data: byte figures are then estimates
    /// that may count a shared base more than once.
    #[serde(default)]
    pub sharing_data: bool,
    pub images: I,
    #[serde(default)]
    pub build_cache: FileCache<'a>,
    /// "Say what the host needs", when there is something to say.
    #[serde(default)]
    pub host_hint: Option<Cow<'a, str>>,
    /// What the engine removed, by its own answers, that the plan did not ask for (written
    /// only when something was, not read back).
    #[serde(skip_serializing_if = "<[_]>::is_empty", skip_deserializing)]
    pub unplanned_removals: Vec<&'a UnplannedRemoval>,
}

/// One image in the document.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileImage<'a> {
    pub id: ImageId,
    pub references: Cow<'a, [String]>,
    pub digests: Cow<'a, [String]>,
    pub parent_id: Option<ImageId>,
    pub created: DateTime<Utc>,
    pub last_tagged: Option<DateTime<Utc>>,
    /// The age the planner used; `None` when it cannot be told (`unknown_age`).
    #[serde(default)]
    pub age_secs: Option<u64>,
    pub size: u64,
    pub action: Action,
    pub policy: Option<Cow<'a, str>>,
    pub reason: Cow<'a, Reason>,
    #[serde(default)]
    pub reason_text: String,
    /// For planned deletions: the execution wave (children before parents).
    pub wave: Option<usize>,
    /// For planned deletions: the estimated bytes the deletion frees.
    pub reclaimable_bytes: Option<u64>,
    /// `first_seen`/`last_used` (Unix seconds) and their sources, when the history knows
    /// the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Record>,
    /// Present for planned deletions once executed, or held back by a build (written, not
    /// read back: a plan file has none).
    #[serde(skip_deserializing)]
    pub outcome: Option<FileOutcome<'a>>,
    #[serde(default)]
    pub reclaimed_bytes: u64,
}

/// An image's outcome in the document: what execution did, or why it did not run.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum FileOutcome<'a> {
    Executed(&'a Outcome),
    /// `{"kind": "deferred", "reason": "build_in_progress"}`.
    Deferred {
        kind: &'static str,
        reason: &'static str,
    },
}

impl FileOutcome<'_> {
    /// A planned deletion a build held back.
    pub const DEFERRED: Self = FileOutcome::Deferred {
        kind: "deferred",
        reason: "build_in_progress",
    };
}

/// The `build_cache` object of the document.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FileCache<'a> {
    /// Why the section was skipped, else null.
    #[serde(default)]
    pub notice: Option<Cow<'a, str>>,
    #[serde(default)]
    pub total_bytes: u64,
    #[serde(default)]
    pub reclaimable_bytes: u64,
    #[serde(default)]
    pub records: Vec<FileRecord<'a>>,
}

/// One build cache record in the document.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileRecord<'a> {
    pub id: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: Cow<'a, CacheType>,
    pub description: Cow<'a, str>,
    pub parents: Cow<'a, [String]>,
    pub size: u64,
    pub created: Option<DateTime<Utc>>,
    pub last_used: Option<DateTime<Utc>>,
    #[serde(default)]
    pub idle_secs: Option<u64>,
    pub usage_count: u64,
    pub shared: bool,
    pub in_use: bool,
    pub action: Action,
    pub rule: Option<Cow<'a, str>>,
    pub reason: Cow<'a, CacheReason>,
    #[serde(default)]
    pub reason_text: String,
    /// For planned deletions: the execution wave (children before parents).
    pub wave: Option<usize>,
    /// Present for planned deletions once executed (written, not read back).
    #[serde(skip_deserializing)]
    pub outcome: Option<&'a CacheOutcome>,
    #[serde(default)]
    pub reclaimed_bytes: u64,
}
