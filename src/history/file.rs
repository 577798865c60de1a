//! The history file: versioned JSON, written crash-safe (temp file in the same directory →
//! fsync → rename → fsync the directory), mode [`MODE`] with the group of its directory
//! whatever the umask (so the agent's user reads a file a root `prune` wrote). A corrupt or
//! foreign file is moved aside with a warning and the history starts over (every image
//! first seen now: nothing becomes eligible by accident); a file that cannot be read (no
//! permission, an I/O error) is never replaced: the run stops (see `store`).
//!
//! The records are stored by column, so that 100 000 images load and save in tens of
//! milliseconds (about 90 bytes per image): image `k` is the `k`-th 64 hex digits of `ids`,
//! the `k`-th number of `first_seen`/`last_used` (Unix seconds) and the `k`-th letter of
//! `first_seen_by`/`last_used_by` (`c` created, `a` adopted, `e` event, `l` listing,
//! `k` container, `g` gap), in ID order; and the use counts ([`super::Uses`]): the `k`-th
//! number of `uses` (the decayed count) and of `uses_at` (when it was last brought up to
//! date, 0: never).
//!
//! Versions: a change that an older build can ignore (a new column) keeps the version; one
//! it would misread raises it (and an older build then moves the file aside). The use
//! columns were added within version 1: a file without them (written before) loads with no
//! uses, and a build without them reads a file that has them (serde skips unknown fields).
//!
//! ```json
//! {"format": "stagesweep-history", "version": 1, "engine_id": "…", "checkpoint": 1700000000123456789,
//!  "images": {"ids": "3f2a…", "first_seen": [1700000000], "last_used": [1700000100],
//!             "first_seen_by": "c", "last_used_by": "e", "uses": [2.5], "uses_at": [1700000100]}}
//! ```

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{History, Record, Records, Source};
use crate::inventory::ImageId;

/// What the `format` field says.
pub const FORMAT: &str = "stagesweep-history";
/// The layout version this build reads and writes.
pub const VERSION: u32 = 1;
/// The file's mode: the owner writes, its directory's group (the agent's) reads.
pub const MODE: u32 = 0o640;

/// Why the history could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("cannot create the history directory {dir}: {source} (create it, or set history.path)")]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error(
        "cannot write the history file {path}: {source} (check the directory's permissions and free space, or set history.path)"
    )]
    Write { path: PathBuf, source: io::Error },
    /// The file there cannot be read, so what another writer recorded cannot be merged in:
    /// it is left as it is.
    #[error(
        "cannot read the history file {path} before writing it: {source} (it is left as it is; make it readable by stagesweep, mode 0640 with the group of its directory)"
    )]
    Unreadable { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Lock(#[from] crate::locks::StateLockError),
}

/// What reading the file gave.
#[derive(Debug)]
pub enum Loaded {
    /// No file: this host never had a history (the first reconcile adopts).
    Missing,
    /// The history as written.
    Read(History),
    /// The file was unusable (`why`); it was moved to `to` (or could not be: `to` is `None`)
    /// and the history starts over.
    Unusable { why: String, to: Option<PathBuf> },
    /// The file is there but cannot be read (no permission, an I/O error): it is not ours to
    /// replace, so nothing may write over it.
    Unreadable(io::Error),
}

impl Loaded {
    /// The history to go on with.
    #[must_use]
    pub fn into_history(self) -> History {
        match self {
            Loaded::Missing => History::first_run(),
            Loaded::Read(h) => h,
            Loaded::Unusable { .. } | Loaded::Unreadable(_) => History::start_over(),
        }
    }
}

#[derive(Deserialize)]
struct Head {
    format: Option<String>,
    version: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct FileV1<'a> {
    format: Cow<'a, str>,
    version: u32,
    engine_id: Cow<'a, str>,
    checkpoint: Option<i64>,
    #[serde(borrow)]
    images: Columns<'a>,
}

#[derive(Serialize, Deserialize)]
struct Columns<'a> {
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

const LETTERS: [(Source, u8); 6] = [
    (Source::Created, b'c'),
    (Source::Adopted, b'a'),
    (Source::Event, b'e'),
    (Source::Listing, b'l'),
    (Source::Container, b'k'),
    (Source::Gap, b'g'),
];

fn letter(source: Source) -> u8 {
    LETTERS
        .iter()
        .find(|(s, _)| *s == source)
        .map_or(b'?', |(_, l)| *l)
}

fn source(letter: u8) -> Option<Source> {
    LETTERS.iter().find(|(_, l)| *l == letter).map(|(s, _)| *s)
}

impl Columns<'_> {
    fn of(records: &Records) -> Columns<'static> {
        let mut entries: Vec<(&ImageId, &Record)> = records.iter().collect();
        // ID order; the first 8 bytes decide almost always, and compare without a memcmp.
        let head = |id: &ImageId| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&id.as_bytes()[..8]);
            u64::from_be_bytes(b)
        };
        entries.sort_unstable_by(|(a, _), (b, _)| head(a).cmp(&head(b)).then_with(|| a.cmp(b)));
        let mut ids = vec![0u8; entries.len() * 64];
        for ((id, _), out) in entries.iter().zip(ids.chunks_exact_mut(64)) {
            hex::encode_to_slice(id.as_bytes(), out).expect("64 hex digits fit 64 bytes");
        }
        let letters = |f: fn(&Record) -> Source| -> String {
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

    fn records(&self) -> Result<Records, String> {
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
        let mut out = Records::with_capacity_and_hasher(n, rustc_hash::FxBuildHasher);
        let mut dropped = 0usize;
        let (fs_by, lu_by) = (self.first_seen_by.as_bytes(), self.last_used_by.as_bytes());
        for (k, hex_id) in self.ids.as_bytes().chunks_exact(64).enumerate() {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hex_id, &mut bytes)
                .map_err(|_| format!("corrupt history (image {k} has no valid ID)"))?;
            let by = |letters: &[u8]| {
                source(letters[k])
                    .ok_or_else(|| format!("corrupt history (image {k} has an unknown source)"))
            };
            let mut record = Record {
                first_seen: self.first_seen[k],
                last_used: self.last_used[k],
                first_seen_by: by(fs_by)?,
                last_used_by: by(lu_by)?,
                uses: 0.0,
                uses_at: 0,
            };
            // A count that is no count (negative, NaN, infinite) or has no real time is none.
            if counted
                && self.uses[k].is_finite()
                && self.uses[k] > 0.0
                && is_plausible(self.uses_at[k])
            {
                record.uses = self.uses[k];
                record.uses_at = self.uses_at[k];
            }
            // A time before 1980 (or past any clock) is no time at all: such a record is
            // unknown (its image is first seen at the next reconcile), never 1970.
            if !(is_plausible(record.first_seen) && is_plausible(record.last_used)) {
                dropped += 1;
                continue;
            }
            out.insert(ImageId::from_bytes(bytes), record);
        }
        if dropped > 0 {
            tracing::warn!(
                records = dropped,
                "history records with impossible times (before 1980, or out of range) dropped: their images count as first seen now"
            );
        }
        Ok(out)
    }
}

/// Unix seconds that can be a real time: after 1980-01-01 and before the year 9999.
fn is_plausible(secs: i64) -> bool {
    const YEAR_9999: i64 = 253_402_300_799;
    secs > crate::inventory::EARLIEST_REAL_TIME.timestamp() && secs < YEAR_9999
}

/// Read the history at `path`: a corrupt or foreign file is moved aside (see
/// [`Loaded::Unusable`]); one that cannot be read is left alone ([`Loaded::Unreadable`]).
#[must_use]
pub fn load(path: &Path) -> Loaded {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
        // Not ours to move (we may not even see it): the caller stops.
        Err(e) => return Loaded::Unreadable(e),
    };
    match parse(&bytes) {
        Ok(h) => Loaded::Read(h),
        Err(why) => {
            let to = aside_path(path);
            match fs::rename(path, &to) {
                Ok(()) => Loaded::Unusable { why, to: Some(to) },
                Err(e) => Loaded::Unusable {
                    why: format!("{why}; moving it aside failed: {e}"),
                    to: None,
                },
            }
        }
    }
}

/// Parse the file's bytes; the error says what is wrong with them. One pass when the file
/// is well-formed; a second one only to explain what is wrong with it.
pub fn parse(bytes: &[u8]) -> Result<History, String> {
    if let Ok(file) = serde_json::from_slice::<FileV1<'_>>(bytes)
        && file.format == FORMAT
        && file.version == VERSION
    {
        return Ok(History {
            engine_id: file.engine_id.into_owned(),
            half_life: 0,
            checkpoint: file.checkpoint,
            images: file.images.records()?,
            adopt: false,
            dirty: false,
            pending_gap: None,
            gone: rustc_hash::FxHashSet::default(),
        });
    }
    let head: Head =
        serde_json::from_slice(bytes).map_err(|e| format!("not a history file ({e})"))?;
    match (head.format.as_deref(), head.version) {
        (Some(FORMAT), Some(VERSION)) => {
            let e = serde_json::from_slice::<FileV1<'_>>(bytes).err();
            Err(format!(
                "corrupt history ({})",
                e.map(|e| e.to_string()).unwrap_or_default()
            ))
        }
        (Some(FORMAT), v) => Err(format!(
            "history version {v:?} is not {VERSION} (written by another stagesweep version)"
        )),
        (f, _) => Err(format!("format {f:?} is not {FORMAT:?} (a foreign file)")),
    }
}

/// The history as the file's bytes.
#[must_use]
pub fn to_bytes(history: &History) -> Vec<u8> {
    let out = FileV1 {
        format: Cow::Borrowed(FORMAT),
        version: VERSION,
        engine_id: Cow::Borrowed(&history.engine_id),
        checkpoint: history.checkpoint,
        images: Columns::of(&history.images),
    };
    // ~90 bytes per record, and up to ~25 for its use count.
    let mut buf = Vec::with_capacity(256 + history.images.len() * 120);
    serde_json::to_writer(&mut buf, &out).expect("serializing plain values to memory cannot fail");
    buf.push(b'\n');
    buf
}

/// `history.json` → `history.json.corrupt-<unix seconds>`.
fn aside_path(path: &Path) -> PathBuf {
    let secs = chrono::Utc::now().timestamp();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{secs}"));
    path.with_file_name(name)
}

/// Write the history crash-safe. With `create_dir`, a missing directory is created (mode
/// 0700); without, a missing directory means "nowhere to write" and is an error.
pub fn save(path: &Path, history: &History, create_dir: bool) -> Result<(), SaveError> {
    ensure_dir(path, create_dir)?;
    write(path, &to_bytes(history))
}

/// The directory of the history file at `path`.
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// With `create_dir`, create the directory of `path` when missing (mode 0700).
pub fn ensure_dir(path: &Path, create_dir: bool) -> Result<(), SaveError> {
    let dir = dir_of(path);
    if create_dir && !dir.exists() {
        use std::os::unix::fs::DirBuilderExt as _;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| SaveError::CreateDir {
                dir: dir.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// Write a history's bytes ([`to_bytes`]) crash-safe into an existing directory.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), SaveError> {
    let dir = dir_of(path);
    let write_err = |source| SaveError::Write {
        path: path.to_owned(),
        source,
    };
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(name);
    let written = write_synced(&tmp, bytes, dir).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    // The rename is durable once the directory is synced.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)
}

/// Write `bytes` to a new file at `path` (mode [`MODE`], the group of `dir`) and sync it.
fn write_synced(path: &Path, bytes: &[u8], dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let file = File::create(path)?;
    // fchmod ignores the umask: a root `prune` under umask 077 still leaves a file the
    // agent's group reads.
    file.set_permissions(fs::Permissions::from_mode(MODE))?;
    let group = fs::metadata(dir)?.gid();
    if file.metadata()?.gid() != group {
        // Only root, or an owner in that group, may; a setgid directory needs none of it.
        let gid = rustix::fs::Gid::from_raw(group);
        if let Err(e) = rustix::fs::fchown(&file, None, Some(gid)) {
            tracing::debug!(error = %e, group, "cannot give the history file its directory's group");
        }
    }
    let mut w = BufWriter::new(file);
    w.write_all(bytes)?;
    let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::fake_id;
    use crate::history::Source;

    fn sample(n: usize) -> History {
        let mut h = History {
            engine_id: "E:1".into(),
            checkpoint: Some(1_700_000_000_123_456_789),
            ..History::default()
        };
        for i in 0..n {
            h.used(
                fake_id(&i.to_string()),
                1_700_000_000 + i64::try_from(i).expect("small"),
                Source::Event,
            );
        }
        h.dirty = false;
        h
    }

    #[test]
    fn round_trips_and_is_stable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state/history.json");
        let h = sample(50);
        assert!(matches!(
            save(&path, &h, false),
            Err(SaveError::CreateDir { .. } | SaveError::Write { .. })
        ));
        save(&path, &h, true).expect("save");
        let Loaded::Read(back) = load(&path) else {
            panic!("readable")
        };
        assert_eq!(back, h);
        let first = fs::read(&path).expect("read");
        save(&path, &back, false).expect("save again");
        assert_eq!(
            fs::read(&path).expect("read"),
            first,
            "same history, same bytes"
        );
        let leftovers: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, ["history.json"], "no temp file left behind");
        let doc: serde_json::Value = serde_json::from_slice(&first).expect("json");
        let ids = doc["images"]["ids"].as_str().expect("ids");
        let chunks: Vec<&str> = (0..ids.len() / 64)
            .map(|k| &ids[k * 64..k * 64 + 64])
            .collect();
        assert!(
            chunks.windows(2).all(|w| w[0] < w[1]),
            "records in ID order"
        );
        let text = String::from_utf8(first).expect("utf-8");
        assert!(
            text.starts_with(r#"{"format":"stagesweep-history","version":1,"#),
            "{text}"
        );
    }

    #[test]
    fn a_missing_file_means_first_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let loaded = load(&dir.path().join("history.json"));
        assert!(matches!(loaded, Loaded::Missing));
        assert!(loaded.into_history().adopt);
    }

    #[test]
    fn corrupt_and_foreign_files_are_moved_aside() {
        let bad_letter = format!(
            "{{\"format\": \"stagesweep-history\", \"version\": 1, \"engine_id\": \"x\", \"checkpoint\": null, \"images\": {{\"ids\": \"{}\", \"first_seen\": [1], \"last_used\": [1], \"first_seen_by\": \"z\", \"last_used_by\": \"e\"}}}}",
            "a".repeat(64)
        );
        let cases: [(&[u8], &str); 6] = [
            (b"{\"format\": \"stagesweep-history\", \"version\": 1, \"images\": {", "not a history file"),
            (b"[1, 2, 3]", "not a history file"),
            (b"{\"hello\": \"world\"}", "a foreign file"),
            (b"{\"format\": \"stagesweep-history\", \"version\": 9}", "history version Some(9) is not 1"),
            (
                b"{\"format\": \"stagesweep-history\", \"version\": 1, \"engine_id\": \"x\", \"images\": {\"ids\": \"zz\"}}",
                "corrupt history",
            ),
            (bad_letter.as_bytes(), "image 0 has an unknown source"),
        ];
        for (bytes, why_start) in cases {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("history.json");
            fs::write(&path, bytes).expect("write");
            let loaded = load(&path);
            let Loaded::Unusable { why, to: Some(to) } = &loaded else {
                panic!("unusable: {loaded:?}")
            };
            assert!(why.contains(why_start), "{why}");
            assert!(!path.exists(), "moved away");
            assert_eq!(fs::read(to).expect("moved aside"), bytes);
            let name = to.file_name().expect("name").to_string_lossy().into_owned();
            assert!(name.starts_with("history.json.corrupt-"), "{name}");
            let h = loaded.into_history();
            assert!(
                !h.adopt && h.images.is_empty(),
                "starts over without adoption"
            );
        }
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_never_writes_into_it() {
        use std::io::Read as _;
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.json");
        save(&path, &sample(3), true).expect("save");
        let before = fs::read(&path).expect("read");
        // A reader that opened the file before a write keeps reading the old file whole:
        // the new one is written beside it and renamed over it (an in-place write would
        // truncate it under the reader, and a crash would leave half a file).
        let mut reader = File::open(&path).expect("open");
        let inode = fs::metadata(&path).expect("stat").ino();
        save(&path, &sample(40), false).expect("save again");
        assert_ne!(
            fs::metadata(&path).expect("stat").ino(),
            inode,
            "a new file"
        );
        let mut old = Vec::new();
        reader.read_to_end(&mut old).expect("read the old file");
        assert_eq!(old, before, "the old file is intact");
        assert!(matches!(load(&path), Loaded::Read(h) if h.images.len() == 40));
        // Mode 0640 whatever the umask (here 022 would give 0644).
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, MODE);
    }

    #[test]
    fn an_unreadable_file_is_left_where_it_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.json");
        fs::create_dir(&path).expect("a directory where the file should be");
        assert!(matches!(load(&path), Loaded::Unreadable(_)));
        assert!(path.is_dir(), "not moved aside");
    }

    #[test]
    fn impossible_times_make_a_record_unknown_never_1970() {
        let ok = "a".repeat(64);
        let zero = "b".repeat(64);
        let huge = "c".repeat(64);
        let text = format!(
            "{{\"format\": \"stagesweep-history\", \"version\": 1, \"engine_id\": \"x\", \"checkpoint\": null, \"images\": {{\"ids\": \"{ok}{zero}{huge}\", \"first_seen\": [1700000000, 0, 1700000000], \"last_used\": [1700000000, 0, 9000000000000000], \"first_seen_by\": \"eee\", \"last_used_by\": \"eee\"}}}}"
        );
        let h = parse(text.as_bytes()).expect("readable");
        assert_eq!(h.images.len(), 1, "only the plausible record stays");
        assert!(h.images.keys().all(|id| id.to_string().ends_with(&ok)));
    }

    #[test]
    fn a_file_written_before_use_counts_loads_with_none() {
        // Written by `stagesweep prune` of main 106d3cc (two images adopted).
        let old = include_bytes!("../../tests/fixtures/history/v1-before-uses.json");
        let h = parse(old).expect("the previous layout loads");
        assert_eq!(h.images.len(), 2);
        for r in h.images.values() {
            assert_eq!(r.use_count(), crate::history::Uses::NONE, "{r:?}");
            assert_eq!(
                (r.first_seen_by, r.last_used_by),
                (Source::Created, Source::Adopted)
            );
        }
    }

    #[test]
    fn use_counts_round_trip_and_bad_ones_are_none() {
        let mut h = sample(3);
        let a = fake_id("1");
        h.used_counted(a, 1_700_000_500);
        h.used_counted(a, 1_700_000_500);
        h.dirty = false;
        let bytes = to_bytes(&h);
        let back = parse(&bytes).expect("readable");
        assert_eq!(back, h);
        assert_eq!(
            (back.images[&a].uses, back.images[&a].uses_at),
            (2.0, 1_700_000_500)
        );
        let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(doc["version"], 1, "an added column keeps the version");
        // One column without the other, or of another length: corrupt.
        let mut short = doc.clone();
        short["images"]["uses"] = serde_json::json!([1.0]);
        let e = parse(&serde_json::to_vec(&short).expect("json")).expect_err("corrupt");
        assert!(e.contains("use columns differ in length"), "{e}");
        // A negative count, or one at no real time, is no count.
        let mut bad = doc;
        bad["images"]["uses"] = serde_json::json!([-1.0, 3.0, 2.0]);
        bad["images"]["uses_at"] = serde_json::json!([1_700_000_000, 0, 1_700_000_000]);
        let h = parse(&serde_json::to_vec(&bad).expect("json")).expect("readable");
        let counted: Vec<f32> = {
            let mut v: Vec<_> = h.images.values().map(|r| r.uses).collect();
            v.sort_by(f32::total_cmp);
            v
        };
        assert_eq!(counted, [0.0, 0.0, 2.0]);
    }
}
