//! The layout of the history file (version 2): one line of JSON that says what the file is,
//! then the records in binary, then a checksum. 62 bytes per image (6.2 MB at 100 000, a
//! third less than the JSON of version 1), written and read without any text to format or
//! parse, so that 100 000 images save and load in tens of milliseconds.
//!
//! ```text
//! {"format":"stagesweep-history","version":2,"engine_id":"…","checkpoint":1700000000123456789,"images":2,"record_bytes":62}\n
//! record × images, in ID order:
//!   0..32   the image ID (32 bytes)
//!   32..40  first_seen  (i64, little-endian, Unix seconds)
//!   40..48  last_used   (i64)
//!   48..56  uses_at     (i64: when the use count was last brought up to date, 0: never)
//!   56..60  uses        (f32: the decayed use count, [`super::Uses`])
//!   60      first_seen_by, 61 last_used_by (a letter: `c` created, `a` adopted, `e` event,
//!           `l` listing, `k` container, `g` gap)
//! CRC-32 (IEEE) of every byte before it, little-endian (4 bytes)
//! ```
//!
//! `head -1` shows the header (`jq` reads it). A file cut short, or with a byte changed,
//! fails its length or its checksum and is unusable as a whole (see `file`). A later build
//! may append fields to a record (a larger `record_bytes`): this one reads the first 62 bytes
//! of each and ignores the rest; a change it would misread raises the version.

use serde::{Deserialize, Serialize};

use super::{History, Record, Records, Source};
use crate::inventory::ImageId;

/// What the `format` field says (in either layout).
pub const FORMAT: &str = "stagesweep-history";
/// The layout version this build writes.
pub const VERSION: u32 = 2;
/// The bytes of one record this build writes (and reads at least).
pub const RECORD_BYTES: usize = 62;
/// How every file of this layout begins (the header is written in this order).
pub const PREFIX: &[u8] = br#"{"format":"stagesweep-history","version":2,"#;

/// The header line.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    format: &'a str,
    version: u32,
    #[serde(borrow)]
    engine_id: std::borrow::Cow<'a, str>,
    checkpoint: Option<i64>,
    /// How many records follow.
    images: u64,
    record_bytes: u64,
}

const LETTERS: [(Source, u8); 6] = [
    (Source::Created, b'c'),
    (Source::Adopted, b'a'),
    (Source::Event, b'e'),
    (Source::Listing, b'l'),
    (Source::Container, b'k'),
    (Source::Gap, b'g'),
];

/// The letter of a source in the file.
pub(super) fn letter(source: Source) -> u8 {
    LETTERS
        .iter()
        .find(|(s, _)| *s == source)
        .map_or(b'?', |(_, l)| *l)
}

/// The source of a letter in the file.
pub(super) fn source(letter: u8) -> Option<Source> {
    LETTERS.iter().find(|(_, l)| *l == letter).map(|(s, _)| *s)
}

/// The records in ID order (so that the same history gives the same bytes), each after the
/// first 8 bytes of its ID.
pub(super) fn in_id_order(records: &Records) -> Vec<(u64, &ImageId, &Record)> {
    // The first 8 bytes decide almost always, and compare without a memcmp.
    let head = |id: &ImageId| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&id.as_bytes()[..8]);
        u64::from_be_bytes(b)
    };
    let mut keyed: Vec<(u64, &ImageId, &Record)> =
        records.iter().map(|(id, r)| (head(id), id, r)).collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    keyed
}

/// The history as the file's bytes.
#[must_use]
pub fn encode(history: &History) -> Vec<u8> {
    let entries = in_id_order(&history.images);
    let header = Header {
        format: FORMAT,
        version: VERSION,
        engine_id: std::borrow::Cow::Borrowed(&history.engine_id),
        checkpoint: history.checkpoint,
        images: entries.len() as u64,
        record_bytes: RECORD_BYTES as u64,
    };
    let mut buf = Vec::with_capacity(256 + history.engine_id.len() + entries.len() * RECORD_BYTES);
    serde_json::to_writer(&mut buf, &header)
        .expect("serializing plain values to memory cannot fail");
    buf.push(b'\n');
    // Each record made whole on the stack and copied once: field by field, the small
    // copies were calls to memcpy at `opt-level = "s"` (half the CPU, `perf`).
    for (_, id, r) in entries {
        let mut rec = [0u8; RECORD_BYTES];
        put(&mut rec, 0, *id.as_bytes());
        put(&mut rec, 32, r.first_seen.to_le_bytes());
        put(&mut rec, 40, r.last_used.to_le_bytes());
        put(&mut rec, 48, r.uses_at.to_le_bytes());
        put(&mut rec, 56, r.uses.to_le_bytes());
        rec[60] = letter(r.first_seen_by);
        rec[61] = letter(r.last_used_by);
        buf.extend_from_slice(&rec);
    }
    let sum = crc32fast::hash(&buf);
    buf.extend_from_slice(&sum.to_le_bytes());
    buf
}

/// A file of this layout, checked whole (header, length, checksum, every record's sources):
/// reading its records cannot fail.
pub struct Opened<'a> {
    pub engine_id: String,
    pub checkpoint: Option<i64>,
    body: &'a [u8],
    stride: usize,
}

/// Check a file of this layout (it begins with [`PREFIX`]); the error says what is wrong.
pub fn open(bytes: &[u8]) -> Result<Opened<'_>, String> {
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("corrupt history (no end to its header line)")?;
    let header: Header<'_> = serde_json::from_slice(&bytes[..end])
        .map_err(|e| format!("corrupt history (its header: {e})"))?;
    let stride = usize::try_from(header.record_bytes).unwrap_or(usize::MAX);
    if stride < RECORD_BYTES || stride == usize::MAX {
        return Err(format!(
            "corrupt history (records of {} bytes, this build needs {RECORD_BYTES} at least)",
            header.record_bytes
        ));
    }
    let body = &bytes[end + 1..];
    let n = usize::try_from(header.images).unwrap_or(usize::MAX);
    let want = n.checked_mul(stride).and_then(|b| b.checked_add(4));
    if want != Some(body.len()) {
        return Err(format!(
            "corrupt history (truncated or extended: {} records of {stride} bytes and a checksum after the header, {} bytes there)",
            header.images,
            body.len()
        ));
    }
    let (data, sum) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(data).to_le_bytes() != sum {
        return Err(
            "corrupt history (its checksum does not match: the file was damaged or changed)"
                .to_owned(),
        );
    }
    let body = &body[..n * stride];
    for (k, rec) in body.chunks_exact(stride).enumerate() {
        if source(rec[60]).is_none() || source(rec[61]).is_none() {
            return Err(format!("corrupt history (image {k} has an unknown source)"));
        }
    }
    Ok(Opened {
        engine_id: header.engine_id.into_owned(),
        checkpoint: header.checkpoint,
        body,
        stride,
    })
}

impl Opened<'_> {
    /// The records as the file has them (not yet checked by [`Sane`]).
    pub fn records(&self) -> impl Iterator<Item = (ImageId, Record)> + '_ {
        self.body.chunks_exact(self.stride).map(|rec| {
            let by = |at: usize| source(rec[at]).unwrap_or(Source::Gap);
            let record = Record {
                first_seen: i64::from_le_bytes(get(rec, 32)),
                last_used: i64::from_le_bytes(get(rec, 40)),
                uses_at: i64::from_le_bytes(get(rec, 48)),
                uses: f32::from_le_bytes(get(rec, 56)),
                first_seen_by: by(60),
                last_used_by: by(61),
            };
            let id: [u8; 32] = get(rec, 0);
            (ImageId::from_bytes(id), record)
        })
    }
}

/// Read a file of this layout (it begins with [`PREFIX`]); the error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<History, String> {
    let file = open(bytes)?;
    let mut out = Checked::with_capacity(file.body.len() / file.stride);
    for (id, record) in file.records() {
        out.insert(id, record);
    }
    Ok(History {
        engine_id: file.engine_id,
        checkpoint: file.checkpoint,
        images: out.finish(),
        ..History::default()
    })
}

/// Take the records of a file of this layout into `history` ([`History::merge`]) as they
/// are read, without a map of them: what a writer does with the file it is about to
/// replace.
pub fn merge_into(history: &mut History, bytes: &[u8]) -> Result<(), String> {
    let file = open(bytes)?;
    let mut sane = Sane::default();
    let records = file
        .records()
        .filter_map(|(id, r)| sane.check(r).map(|r| (id, r)));
    history.merge_records(file.engine_id.clone(), file.checkpoint, records);
    sane.finish();
    Ok(())
}

/// `N` bytes of a record from `at`, always inlined: a load, never a call to memcpy (which
/// `opt-level = "s"` made of the field-by-field copies: half the CPU was in memmove).
#[allow(clippy::inline_always)] // a copy of N constant bytes must stay a load
#[inline(always)]
fn get<const N: usize>(rec: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&rec[at..at + N]);
    b
}

/// Put `bytes` into a record at `at` (inlined, as [`get`]).
#[allow(clippy::inline_always)] // as `get`
#[inline(always)]
fn put<const N: usize>(rec: &mut [u8; RECORD_BYTES], at: usize, bytes: [u8; N]) {
    rec[at..at + N].copy_from_slice(&bytes);
}

/// The checks of a record read from a file (of either layout).
#[derive(Default)]
pub(super) struct Sane {
    dropped: usize,
}

impl Sane {
    /// A use count that is no count (negative, NaN, infinite, or at no real time) is none;
    /// a record with a time that is no time is dropped (`None`).
    pub fn check(&mut self, mut record: Record) -> Option<Record> {
        if !(record.uses.is_finite() && record.uses > 0.0 && is_plausible(record.uses_at)) {
            record.uses = 0.0;
            record.uses_at = 0;
        }
        // A time before 1980 (or past any clock) is no time at all: such a record is
        // unknown (its image is first seen at the next reconcile), never 1970.
        if !(is_plausible(record.first_seen) && is_plausible(record.last_used)) {
            self.dropped += 1;
            return None;
        }
        Some(record)
    }

    /// Say how many records were dropped, if any.
    pub fn finish(self) {
        if self.dropped > 0 {
            tracing::warn!(
                records = self.dropped,
                "history records with impossible times (before 1980, or out of range) dropped: their images count as first seen now"
            );
        }
    }
}

/// The records of a file as they are read, checked one by one ([`Sane`]).
pub(super) struct Checked {
    records: Records,
    sane: Sane,
}

impl Checked {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            records: Records::with_capacity_and_hasher(n, rustc_hash::FxBuildHasher),
            sane: Sane::default(),
        }
    }

    pub fn insert(&mut self, id: ImageId, record: Record) {
        if let Some(r) = self.sane.check(record) {
            self.records.insert(id, r);
        }
    }

    pub fn finish(self) -> Records {
        self.sane.finish();
        self.records
    }
}

/// Unix seconds that can be a real time: after 1980-01-01 and before the year 9999.
fn is_plausible(secs: i64) -> bool {
    const YEAR_9999: i64 = 253_402_300_799;
    secs > crate::inventory::EARLIEST_REAL_TIME.timestamp() && secs < YEAR_9999
}
