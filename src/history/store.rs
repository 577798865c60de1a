//! Opening and writing the history file as a command or the agent needs it, with the
//! warnings an operator should see. The agent owns the file (it creates its directory);
//! `prune` reads it when present and writes it when its directory exists; dry runs never
//! write (nor move a bad file aside).

use std::path::Path;

use super::History;
use super::file::{self, Loaded};
use crate::config::HistoryConfig;

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

/// The history to use, or `None` when there is none to keep (disabled, or `prune` on a
/// host where neither the file nor its directory exists).
#[must_use]
pub fn open(config: &HistoryConfig, opener: Opener) -> Option<History> {
    if !config.enabled {
        return None;
    }
    let path = &config.path;
    let loaded = if opener == Opener::DryRun {
        match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Loaded::Missing,
            Err(e) => Loaded::Unusable {
                why: format!("cannot read it: {e}"),
                to: None,
            },
            Ok(bytes) => file::parse(&bytes)
                .map_or_else(|why| Loaded::Unusable { why, to: None }, Loaded::Read),
        }
    } else {
        file::load(path)
    };
    match &loaded {
        Loaded::Missing if opener != Opener::Agent && !dir_exists(path) => {
            tracing::debug!(path = %path.display(), "no history directory: images are aged by Created");
            return None;
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
    }
    Some(loaded.into_history())
}

fn dir_exists(path: &Path) -> bool {
    path.parent().is_some_and(Path::is_dir)
}

/// Write the history when it changed; returns whether it was written.
pub fn save(
    config: &HistoryConfig,
    history: &mut History,
    opener: Opener,
) -> Result<bool, file::SaveError> {
    if !history.dirty || opener == Opener::DryRun {
        return Ok(false);
    }
    file::save(&config.path, history, opener == Opener::Agent)?;
    history.dirty = false;
    Ok(true)
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
        assert!(open(&nowhere, Opener::Prune).is_none());
        assert!(open(&nowhere, Opener::Agent).is_some_and(|h| h.adopt));
        let here = config(&dir.path().join("history.json"));
        let mut h = open(&here, Opener::Prune).expect("the directory exists");
        assert!(h.adopt);
        assert!(save(&here, &mut h, Opener::Prune).expect("written"));
        assert!(
            !save(&here, &mut h, Opener::Prune).expect("no error"),
            "nothing changed"
        );
        let again = open(&here, Opener::DryRun).expect("readable");
        assert!(!again.adopt, "the file exists now");
        let off = HistoryConfig {
            enabled: false,
            ..here
        };
        assert!(open(&off, Opener::Agent).is_none());
    }

    #[test]
    fn dry_runs_leave_a_bad_file_where_it_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.json");
        std::fs::write(&path, "garbage").expect("write");
        let h = open(&config(&path), Opener::DryRun).expect("a fresh history");
        assert!(!h.adopt, "nothing becomes eligible by accident");
        assert_eq!(std::fs::read(&path).expect("still there"), b"garbage");
        let mut h = open(&config(&path), Opener::Prune).expect("a fresh history");
        assert!(!path.exists(), "moved aside by a real run");
        assert!(save(&config(&path), &mut h, Opener::Prune).expect("written"));
    }
}
