//! Opening and writing the history file as a command or the agent needs it, with the
//! warnings an operator should see. The agent owns the file (it creates its directory);
//! `prune` reads it when present and writes it when its directory exists; dry runs never
//! write (nor move a bad file aside).
//!
//! Two processes write the file (the agent, and `prune` at the end of its pass): each takes
//! the state lock ([`crate::locks::StateLock`]), reads what is there, merges it in
//! ([`History::merge`]) and writes the result, so neither loses what the other recorded. A
//! file that cannot be read (no permission, an I/O error) stops the run and is never
//! overwritten.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::History;
use super::file::{self, Loaded, SaveError};
use crate::config::HistoryConfig;
use crate::locks::StateLock;

/// How long a writer waits for the other one's load-merge-save.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Who opens the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// The agent: always keeps a history (in memory when the file cannot be written).
    Agent,
    /// `prune`: keeps one when the file or at least its directory exists.
    Prune,
    /// A dry run: reads the file, changes nothing on disk.
    DryRun,
}

/// The history file is there and cannot be read: the run stops, and nothing writes over it.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the history file {}: {source} (it is left as it is; make it readable by stagesweep — mode 0640, the group of its directory — or set history.enabled: false)",
    .path.display()
)]
pub struct Unreadable {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The history to use, or `None` when there is none to keep (disabled, or `prune` on a
/// host where neither the file nor its directory exists).
pub fn open(config: &HistoryConfig, opener: Opener) -> Result<Option<History>, Unreadable> {
    if !config.enabled {
        return Ok(None);
    }
    let path = &config.path;
    let loaded = if opener == Opener::DryRun {
        match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Loaded::Missing,
            Err(e) => Loaded::Unreadable(e),
            Ok(bytes) => file::parse(&bytes)
                .map_or_else(|why| Loaded::Unusable { why, to: None }, Loaded::Read),
        }
    } else {
        file::load(path)
    };
    match &loaded {
        Loaded::Missing if opener != Opener::Agent && !dir_exists(path) => {
            // Said once per run, at info: without a history an image loaded a minute ago
            // with an old `Created` is as old as its `Created` says.
            tracing::info!(
                path = %path.display(),
                "no history directory: images are aged by Created (or their tag time), so an image pulled or loaded moments ago with an old Created can be deleted at once; create the directory, or run the agent, to keep a history"
            );
            return Ok(None);
        }
        Loaded::Missing => {
            tracing::info!(path = %path.display(), "no history yet: adopting the images present (first seen at Created)");
        }
        Loaded::Read(h) => {
            tracing::debug!(path = %path.display(), images = h.images.len(), "history read");
        }
        Loaded::Unusable { why, to: Some(to) } => tracing::warn!(
            path = %path.display(), moved_to = %to.display(),
            "history file unusable ({why}): moved aside; starting over, every image first seen now"
        ),
        Loaded::Unusable { why, to: None } => tracing::warn!(
            path = %path.display(),
            "history file unusable ({why}); starting over, every image first seen now"
        ),
        Loaded::Unreadable(_) => {}
    }
    match loaded {
        Loaded::Unreadable(source) => Err(Unreadable {
            path: path.clone(),
            source,
        }),
        other => {
            let mut h = other.into_history();
            h.half_life = i64::try_from(config.half_life.as_secs()).unwrap_or(i64::MAX);
            Ok(Some(h))
        }
    }
}

fn dir_exists(path: &Path) -> bool {
    path.parent().is_some_and(Path::is_dir)
}

/// Write the history when it changed, merged with what the file holds now; returns whether
/// it was written.
pub fn save(
    config: &HistoryConfig,
    history: &mut History,
    opener: Opener,
) -> Result<bool, SaveError> {
    if !history.dirty || opener == Opener::DryRun {
        return Ok(false);
    }
    let path = &config.path;
    let (_lock, current) = begin_save(path, opener == Opener::Agent)?;
    merge_current(history, current.as_deref(), path);
    file::save(path, history, false)?;
    history.dirty = false;
    Ok(true)
}

/// The first half of a save: create the directory when asked, take the state lock and read
/// what the file holds now (`None`: no file). Blocks; hold the lock until the write is done.
/// A file that cannot be read is an error: nothing may write over it.
pub fn begin_save(
    path: &Path,
    create_dir: bool,
) -> Result<(StateLock, Option<Vec<u8>>), SaveError> {
    file::ensure_dir(path, create_dir)?;
    let lock = StateLock::acquire(path, LOCK_WAIT)?;
    match std::fs::read(path) {
        Ok(bytes) => Ok((lock, Some(bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((lock, None)),
        Err(source) => Err(SaveError::Unreadable {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Merge what the file held ([`begin_save`]) into `history`; a file that does not parse is
/// replaced by this one (with a warning).
pub fn merge_current(history: &mut History, current: Option<&[u8]>, path: &Path) {
    let Some(bytes) = current else { return };
    if let Err(why) = file::merge_into(history, bytes) {
        tracing::warn!(
            path = %path.display(),
            "history file unusable ({why}) when about to write it: replaced by this one"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &Path) -> HistoryConfig {
        HistoryConfig {
            path: path.to_owned(),
            ..HistoryConfig::default()
        }
    }

    #[test]
    fn prune_keeps_a_history_only_where_its_directory_exists() {
        let dir = tempfile::tempdir().expect("temp dir");
        let nowhere = config(&dir.path().join("missing/history.json"));
        assert!(open(&nowhere, Opener::Prune).expect("readable").is_none());
        assert!(
            open(&nowhere, Opener::Agent)
                .expect("readable")
                .is_some_and(|h| h.adopt)
        );
        let here = config(&dir.path().join("history.json"));
        let mut h = open(&here, Opener::Prune)
            .expect("readable")
            .expect("the directory exists");
        assert!(h.adopt);
        assert!(save(&here, &mut h, Opener::Prune).expect("written"));
        assert!(
            !save(&here, &mut h, Opener::Prune).expect("no error"),
            "nothing changed"
        );
        let again = open(&here, Opener::DryRun)
            .expect("readable")
            .expect("there");
        assert!(!again.adopt, "the file exists now");
        let off = HistoryConfig {
            enabled: false,
            ..here
        };
        assert!(open(&off, Opener::Agent).expect("off").is_none());
    }

    #[test]
    fn dry_runs_leave_a_bad_file_where_it_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.json");
        std::fs::write(&path, "garbage").expect("write");
        let h = open(&config(&path), Opener::DryRun)
            .expect("readable")
            .expect("a fresh history");
        assert!(!h.adopt, "nothing becomes eligible by accident");
        assert_eq!(std::fs::read(&path).expect("still there"), b"garbage");
        let mut h = open(&config(&path), Opener::Prune)
            .expect("readable")
            .expect("a fresh history");
        assert!(!path.exists(), "moved aside by a real run");
        assert!(save(&config(&path), &mut h, Opener::Prune).expect("written"));
    }

    /// A plausible time (the file drops records before 1980).
    const T: i64 = 1_700_000_000;

    #[test]
    fn two_writers_lose_nothing_of_each_other() {
        use crate::engine::fake::fake_id;
        use crate::history::Source;
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = config(&dir.path().join("history.json"));
        let (a, b, c) = (fake_id("a"), fake_id("b"), fake_id("c"));
        // The agent and a `prune` read the same file, then each records what it saw.
        let mut agent = open(&cfg, Opener::Agent).expect("readable").expect("kept");
        let mut prune = open(&cfg, Opener::Prune).expect("readable").expect("kept");
        agent.used(a, T + 100, Source::Event);
        agent.used(b, T + 300, Source::Event);
        prune.used(b, T + 200, Source::Listing);
        prune.used(c, T + 150, Source::Listing);
        assert!(save(&cfg, &mut agent, Opener::Agent).expect("the agent writes"));
        assert!(save(&cfg, &mut prune, Opener::Prune).expect("prune writes"));
        let back = open(&cfg, Opener::DryRun)
            .expect("readable")
            .expect("there");
        assert_eq!(
            back.images[&a].last_used,
            T + 100,
            "the agent's record stays"
        );
        let rb = back.images[&b];
        assert_eq!(
            (
                rb.first_seen,
                rb.first_seen_by,
                rb.last_used,
                rb.last_used_by
            ),
            (T + 200, Source::Listing, T + 300, Source::Event),
            "earliest first seen, latest use"
        );
        assert_eq!(back.images[&c].first_seen, T + 150, "prune's record stays");
        // The agent writes again later: what prune recorded meanwhile is merged in.
        agent.used(a, T + 400, Source::Event);
        assert!(save(&cfg, &mut agent, Opener::Agent).expect("the agent writes"));
        let back = open(&cfg, Opener::DryRun)
            .expect("readable")
            .expect("there");
        assert_eq!(back.images[&a].last_used, T + 400);
        assert_eq!(
            back.images[&c].first_seen,
            T + 150,
            "prune's record survives"
        );
        assert!(agent.images.contains_key(&c), "and the agent knows it now");
    }

    #[test]
    fn a_deleted_image_is_not_merged_back() {
        use crate::engine::fake::fake_id;
        use crate::history::Source;
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = config(&dir.path().join("history.json"));
        let a = fake_id("a");
        let mut agent = open(&cfg, Opener::Agent).expect("readable").expect("kept");
        agent.used(a, T + 100, Source::Event);
        let mut prune = open(&cfg, Opener::Prune).expect("readable").expect("kept");
        assert!(save(&cfg, &mut agent, Opener::Agent).expect("written"));
        prune.used(fake_id("b"), T + 100, Source::Listing);
        prune.removed(a);
        assert!(save(&cfg, &mut prune, Opener::Prune).expect("written"));
        let back = open(&cfg, Opener::DryRun)
            .expect("readable")
            .expect("there");
        assert!(!back.images.contains_key(&a), "prune deleted it");
    }

    #[test]
    fn an_unreadable_history_stops_the_run_and_is_left_untouched() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A directory where the file should be: there, and not readable as a file (root
        // reads a mode-000 file, so permissions cannot make this case in CI).
        let path = dir.path().join("history.json");
        std::fs::create_dir(&path).expect("mkdir");
        std::fs::write(path.join("keep"), b"x").expect("write");
        for opener in [Opener::Prune, Opener::DryRun, Opener::Agent] {
            let e = open(&config(&path), opener).expect_err("cannot be read");
            let text = e.to_string();
            assert!(
                text.contains("history.json") && text.contains("0640"),
                "{text}"
            );
        }
        let mut h = History::first_run();
        h.dirty = true;
        let e = save(&config(&path), &mut h, Opener::Prune).expect_err("not overwritten");
        assert!(
            matches!(e, SaveError::Unreadable { .. } | SaveError::Write { .. }),
            "{e:?}"
        );
        assert_eq!(std::fs::read(path.join("keep")).expect("untouched"), b"x");
    }
}
