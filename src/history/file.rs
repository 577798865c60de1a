//! The history file, written crash-safe (temp file in the same directory → fsync → rename →
//! fsync the directory), mode [`MODE`] with the group of its directory whatever the umask
//! (so the agent's user reads a file a root `prune` wrote). A corrupt, cut short or foreign
//! file is moved aside with a warning and the history starts over (every image first seen
//! now: nothing becomes eligible by accident); a file that cannot be read (no permission, an
//! I/O error) is never replaced: the run stops (see `store`).
//!
//! What is in it: [`super::layout`] (version 2, a JSON header line, then binary records and a
//! checksum) is what this build writes; a file of the previous layout ([`super::layout_v1`],
//! columnar JSON) still loads and is replaced by the current layout at the next write. An
//! older build that reads a file of version 2 moves it aside and starts over (see above).
//!
//! Versions: a change that an older build can ignore (a new column, a longer record) keeps
//! the version; one it would misread raises it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::History;
use super::layout;
use super::layout_v1::{self, FileV1};

pub use super::layout::FORMAT;
/// The layout version this build writes (it also reads the previous one).
pub const VERSION: u32 = layout::VERSION;
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

/// Parse the file's bytes, of either layout; the error says what is wrong with them. One
/// pass when the file is well-formed; a second one only to explain what is wrong with it.
pub fn parse(bytes: &[u8]) -> Result<History, String> {
    if bytes.starts_with(layout::PREFIX) {
        return layout::decode(bytes);
    }
    if let Ok(file) = serde_json::from_slice::<FileV1<'_>>(bytes)
        && file.format == FORMAT
        && file.version == layout_v1::VERSION
    {
        return Ok(History {
            engine_id: file.engine_id.into_owned(),
            checkpoint: file.checkpoint,
            images: file.images.records()?,
            ..History::default()
        });
    }
    // The whole file, or (a binary layout) its first line.
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let head: Head = serde_json::from_slice(bytes)
        .or_else(|e| serde_json::from_slice(first_line).map_err(|_| e))
        .map_err(|e| format!("not a history file ({e})"))?;
    match (head.format.as_deref(), head.version) {
        (Some(FORMAT), Some(layout_v1::VERSION)) => {
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

/// Take what a file's bytes hold into `history` ([`History::merge`]); the error (the file
/// is unusable) says what is wrong with them, and nothing is taken then. A file of the
/// current layout is merged as it is read, with no second map of its records.
pub fn merge_into(history: &mut History, bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(layout::PREFIX) {
        return layout::merge_into(history, bytes);
    }
    history.merge(parse(bytes)?);
    Ok(())
}

/// The history as the file's bytes (the current layout).
#[must_use]
pub fn to_bytes(history: &History) -> Vec<u8> {
    layout::encode(history)
}

/// The history as a file of the previous layout (version 1) would have it: for tests of the
/// migration and for benchmarks.
#[cfg(any(test, feature = "test-util"))]
#[must_use]
pub fn to_bytes_v1(history: &History) -> Vec<u8> {
    let out = FileV1 {
        format: std::borrow::Cow::Borrowed(FORMAT),
        version: layout_v1::VERSION,
        engine_id: std::borrow::Cow::Borrowed(&history.engine_id),
        checkpoint: history.checkpoint,
        images: layout_v1::Columns::of(&history.images),
    };
    let mut buf = serde_json::to_vec(&out).expect("serializing plain values to memory cannot fail");
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
        let header_end = first
            .iter()
            .position(|b| *b == b'\n')
            .expect("a header line");
        let header: serde_json::Value =
            serde_json::from_slice(&first[..header_end]).expect("the header is JSON");
        assert_eq!(
            (&header["format"], &header["version"], &header["images"]),
            (
                &serde_json::json!(FORMAT),
                &serde_json::json!(2),
                &serde_json::json!(50)
            )
        );
        let body = &first[header_end + 1..first.len() - 4];
        assert_eq!(body.len(), 50 * layout::RECORD_BYTES);
        let ids: Vec<&[u8]> = body
            .chunks_exact(layout::RECORD_BYTES)
            .map(|r| &r[..32])
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "records in ID order");
        assert!(
            first.starts_with(br#"{"format":"stagesweep-history","version":2,"#),
            "{:?}",
            String::from_utf8_lossy(&first[..header_end])
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
            (b"{\"format\": \"stagesweep-history\", \"version\": 9}", "history version Some(9) is not 2"),
            (
                b"{\"format\": \"stagesweep-history\", \"version\": 1, \"engine_id\": \"x\", \"images\": {\"ids\": \"zz\"}}",
                "corrupt history",
            ),
            (bad_letter.as_bytes(), "image 0 has an unknown source"),
        ];
        for (bytes, why_start) in cases {
            refused_and_moved_aside(bytes, why_start);
        }
    }

    /// `bytes` as the history file: refused with a reason starting `why_start`, moved aside
    /// as `history.json.corrupt-*` unchanged, and the history starts over without adoption.
    fn refused_and_moved_aside(bytes: &[u8], why_start: &str) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.json");
        fs::write(&path, bytes).expect("write");
        let loaded = load(&path);
        let Loaded::Unusable { why, to: Some(to) } = &loaded else {
            panic!("unusable: {loaded:?}")
        };
        assert!(why.contains(why_start), "{why_start}: {why}");
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
        for bytes in [to_bytes(&h), to_bytes_v1(&h)] {
            let back = parse(&bytes).expect("readable");
            assert_eq!(back, h);
            assert_eq!(
                (back.images[&a].uses, back.images[&a].uses_at),
                (2.0, 1_700_000_500)
            );
        }
        let doc: serde_json::Value = serde_json::from_slice(&to_bytes_v1(&h)).expect("json");
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

    /// A file of the current layout with its records rewritten by `f` (position, record
    /// bytes) and its checksum made right again: what a damaged file that passes the
    /// checksum would hold.
    fn rewritten(h: &History, f: impl Fn(usize, &mut [u8])) -> Vec<u8> {
        let mut bytes = to_bytes(h);
        let start = bytes.iter().position(|b| *b == b'\n').expect("header") + 1;
        let end = bytes.len() - 4;
        for (k, rec) in bytes[start..end]
            .chunks_exact_mut(layout::RECORD_BYTES)
            .enumerate()
        {
            f(k, rec);
        }
        let sum = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&sum.to_le_bytes());
        bytes
    }

    #[test]
    fn a_damaged_or_cut_short_file_of_the_current_layout_is_moved_aside() {
        let h = sample(20);
        let good = to_bytes(&h);
        let header_end = good.iter().position(|b| *b == b'\n').expect("header");
        let mut flipped = good.clone();
        flipped[header_end + 100] ^= 0x01;
        let mut bad_header = good.clone();
        bad_header[header_end - 1] = b',';
        let mut more = good.clone();
        more.insert(header_end + 1, 0);
        let bad_letter = rewritten(&h, |k, rec| {
            if k == 3 {
                rec[61] = b'z';
            }
        });
        let cases: [(&[u8], &str); 6] = [
            (&good[..good.len() - 1], "truncated or extended"),
            (
                &good[..header_end + 1 + 7 * layout::RECORD_BYTES],
                "truncated or extended",
            ),
            (&good[..header_end], "no end to its header line"),
            (&more, "truncated or extended"),
            (&flipped, "its checksum does not match"),
            (&bad_header, "corrupt history (its header"),
        ];
        for (bytes, why_start) in cases
            .into_iter()
            .chain([(&bad_letter[..], "image 3 has an unknown source")])
        {
            refused_and_moved_aside(bytes, why_start);
        }
        // Another version of the binary layout names its version.
        let mut v3 = good;
        v3[br#"{"format":"stagesweep-history","version":"#.len()] = b'3';
        let e = parse(&v3).expect_err("not this version");
        assert!(e.contains("history version Some(3) is not 2"), "{e}");
    }

    #[test]
    fn every_cut_and_every_changed_bit_of_a_file_is_refused() {
        let mut h = sample(3);
        h.used_counted(fake_id("1"), 1_700_000_500);
        let good = to_bytes(&h);
        for len in 0..good.len() {
            assert!(parse(&good[..len]).is_err(), "cut to {len} bytes");
        }
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                assert!(parse(&bad).is_err(), "byte {at}, bit {bit}");
            }
        }
    }

    #[test]
    fn merging_a_file_as_it_is_read_is_merging_its_history() {
        // Theirs: 0..8, one record first seen in 1970 (dropped), counts on some.
        let mut theirs = sample(8);
        theirs.used_counted(fake_id("2"), 1_700_001_000);
        theirs.used(fake_id("3"), 1_699_000_000, Source::Listing);
        let bytes = rewritten(&theirs, |k, rec| {
            if k == 5 {
                rec[32..40].copy_from_slice(&0i64.to_le_bytes());
            }
        });
        // Mine: 4..12, one of theirs gone, counts and uses of my own.
        let mut mine = History {
            checkpoint: Some(1_600_000_000),
            ..sample(0)
        };
        for i in 4..12 {
            mine.used(fake_id(&i.to_string()), 1_700_000_002 + i, Source::Event);
        }
        mine.used_counted(fake_id("6"), 1_700_002_000);
        mine.removed(fake_id("7"));
        mine.dirty = false;
        for file in [bytes, to_bytes_v1(&theirs)] {
            let mut streamed = mine.clone();
            merge_into(&mut streamed, &file).expect("readable");
            let mut mapped = mine.clone();
            mapped.merge(parse(&file).expect("readable"));
            assert_eq!(streamed, mapped);
            assert!(streamed.dirty && !streamed.images.contains_key(&fake_id("7")));
        }
        let mut other_engine = mine.clone();
        let mut foreign = theirs.clone();
        foreign.engine_id = "E:2".into();
        merge_into(&mut other_engine, &to_bytes(&foreign)).expect("readable");
        assert_eq!(other_engine, mine, "another engine's file changes nothing");
        let mut untouched = mine.clone();
        let mut bad = to_bytes(&theirs);
        bad.pop();
        assert!(merge_into(&mut untouched, &bad).is_err());
        assert_eq!(untouched, mine, "a corrupt file changes nothing");
    }

    #[test]
    fn impossible_times_and_counts_in_the_current_layout_are_unknown() {
        let h = sample(3);
        let bytes = rewritten(&h, |k, rec| match k {
            0 => rec[32..40].copy_from_slice(&0i64.to_le_bytes()),
            1 => {
                rec[48..56].copy_from_slice(&1_700_000_000i64.to_le_bytes());
                rec[56..60].copy_from_slice(&f32::NAN.to_le_bytes());
            }
            _ => {}
        });
        let back = parse(&bytes).expect("readable");
        assert_eq!(
            back.images.len(),
            2,
            "the record first seen in 1970 is dropped"
        );
        assert!(
            back.images
                .values()
                .all(|r| r.use_count() == crate::history::Uses::NONE)
        );
    }

    #[test]
    fn longer_records_of_a_later_build_are_read_by_their_first_fields() {
        let mut h = sample(4);
        h.used_counted(fake_id("2"), 1_700_000_900);
        h.dirty = false;
        let bytes = to_bytes(&h);
        let header_end = bytes.iter().position(|b| *b == b'\n').expect("header");
        let header = std::str::from_utf8(&bytes[..header_end]).expect("utf-8");
        let mut longer = header
            .replace(r#""record_bytes":62"#, r#""record_bytes":70"#)
            .into_bytes();
        longer.push(b'\n');
        for rec in bytes[header_end + 1..bytes.len() - 4].chunks_exact(layout::RECORD_BYTES) {
            longer.extend_from_slice(rec);
            longer.extend_from_slice(&[0xAB; 8]);
        }
        let sum = crc32fast::hash(&longer);
        longer.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(parse(&longer).expect("readable"), h);
        let shorter =
            String::from_utf8_lossy(&bytes).replace(r#""record_bytes":62"#, r#""record_bytes":61"#);
        let e = parse(shorter.as_bytes()).expect_err("too short");
        assert!(e.contains("records of 61 bytes"), "{e}");
    }

    #[test]
    fn a_file_of_the_previous_layout_loads_and_is_rewritten_in_the_current_one() {
        // Written by the version 1 writer (columnar JSON, with use counts): three images,
        // one counted twice.
        let old = include_bytes!("../../tests/fixtures/history/v1-with-uses.json");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.json");
        fs::write(&path, old).expect("write");
        let Loaded::Read(h) = load(&path) else {
            panic!("the previous layout loads")
        };
        assert_eq!(
            (h.engine_id.as_str(), h.checkpoint),
            ("E:1", Some(1_700_000_000_123_456_789))
        );
        assert_eq!(h.images.len(), 3);
        let counted = &h.images[&fake_id("1")];
        assert_eq!((counted.uses, counted.uses_at), (2.0, 1_700_000_500));
        save(&path, &h, false).expect("save");
        let now = fs::read(&path).expect("read");
        assert!(now.starts_with(layout::PREFIX), "rewritten in version 2");
        assert!(matches!(load(&path), Loaded::Read(back) if back == h));
    }
}
