//! The previous layout of the history file (version 1, columnar JSON), read so that a file
//! written by an older build still loads; the next write replaces it with the current
//! layout ([`super::layout`]). Nothing writes it but tests and benchmarks (to compare).
//!
//! Image `k` is the `k`-th 64 hex digits of `ids`, the `k`-th number of `first_seen` /
//! `last_used` (Unix seconds) and the `k`-th letter of `first_seen_by` / `last_used_by`, in
//! ID order; the use counts are the `k`-th numbers of `uses` and `uses_at` (both columns
//! were added within version 1: a file without them loads with no uses).
//!
//! ```json
//! {"format": "stagesweep-history", "version": 1, "engine_id": "…", "checkpoint": 1700000000123456789,
//!  "images": {"ids": "3f2a…", "first_seen": [1700000000], "last_used": [1700000100],
//!             "first_seen_by": "c", "last_used_by": "e", "uses": [2.5], "uses_at": [1700000100]}}
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::layout::{Checked, source};
use super::{Record, Records};
use crate::inventory::ImageId;

/// The version this module reads.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
pub(super) struct FileV1<'a> {
    pub format: Cow<'a, str>,
    pub version: u32,
    pub engine_id: Cow<'a, str>,
    pub checkpoint: Option<i64>,
    #[serde(borrow)]
    pub images: Columns<'a>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Columns<'a> {
    #[serde(borrow)]
    ids: Cow<'a, str>,
    first_seen: Vec<i64>,
    last_used: Vec<i64>,
    #[serde(borrow)]
    first_seen_by: Cow<'a, str>,
    #[serde(borrow)]
    last_used_by: Cow<'a, str>,
    /// Absent in files written before use counts (version 1 all the same): no uses.
    #[serde(default)]
    uses: Vec<f32>,
    #[serde(default)]
    uses_at: Vec<i64>,
}

impl Columns<'_> {
    /// The records in this layout (as the previous build wrote them).
    #[cfg(any(test, feature = "test-util"))]
    pub fn of(records: &Records) -> Columns<'static> {
        use super::layout::letter;
        let entries: Vec<(&ImageId, &Record)> = super::layout::in_id_order(records)
            .into_iter()
            .map(|(_, id, r)| (id, r))
            .collect();
        let mut ids = vec![0u8; entries.len() * 64];
        for ((id, _), out) in entries.iter().zip(ids.chunks_exact_mut(64)) {
            hex::encode_to_slice(id.as_bytes(), out).expect("64 hex digits fit 64 bytes");
        }
        let letters = |f: fn(&Record) -> super::Source| -> String {
            entries
                .iter()
                .map(|(_, r)| char::from(letter(f(r))))
                .collect()
        };
        Columns {
            ids: Cow::Owned(String::from_utf8(ids).expect("hex digits are ASCII")),
            first_seen: entries.iter().map(|(_, r)| r.first_seen).collect(),
            last_used: entries.iter().map(|(_, r)| r.last_used).collect(),
            first_seen_by: Cow::Owned(letters(|r| r.first_seen_by)),
            last_used_by: Cow::Owned(letters(|r| r.last_used_by)),
            uses: entries.iter().map(|(_, r)| r.uses).collect(),
            uses_at: entries.iter().map(|(_, r)| r.uses_at).collect(),
        }
    }

    pub fn records(&self) -> Result<Records, String> {
        let n = self.first_seen.len();
        let lengths = [
            self.ids.len() / 64,
            self.last_used.len(),
            self.first_seen_by.len(),
            self.last_used_by.len(),
        ];
        if !self.ids.len().is_multiple_of(64) || lengths.iter().any(|l| *l != n) {
            return Err("corrupt history (the image columns differ in length)".to_owned());
        }
        // Both use columns, or neither (a file written before use counts).
        let counted = !(self.uses.is_empty() && self.uses_at.is_empty());
        if counted && (self.uses.len() != n || self.uses_at.len() != n) {
            return Err("corrupt history (the use columns differ in length)".to_owned());
        }
        let mut out = Checked::with_capacity(n);
        let (fs_by, lu_by) = (self.first_seen_by.as_bytes(), self.last_used_by.as_bytes());
        for (k, hex_id) in self.ids.as_bytes().chunks_exact(64).enumerate() {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hex_id, &mut bytes)
                .map_err(|_| format!("corrupt history (image {k} has no valid ID)"))?;
            let by = |letters: &[u8]| {
                source(letters[k])
                    .ok_or_else(|| format!("corrupt history (image {k} has an unknown source)"))
            };
            let (uses, uses_at) = if counted {
                (self.uses[k], self.uses_at[k])
            } else {
                (0.0, 0)
            };
            out.insert(
                ImageId::from_bytes(bytes),
                Record {
                    first_seen: self.first_seen[k],
                    last_used: self.last_used[k],
                    first_seen_by: by(fs_by)?,
                    last_used_by: by(lu_by)?,
                    uses,
                    uses_at,
                },
            );
        }
        Ok(out.finish())
    }
}
