//! The `history:` section: when each image was first seen and last used, kept in one file.
//! Typed values and their validation; knows nothing of the file itself.

use std::path::PathBuf;

use super::ctx::Ctx;
use super::raw::RawHistory;
use super::values::Bad;

/// Default `history.path`.
pub const DEFAULT_HISTORY_PATH: &str = "/var/lib/stagesweep/history.json";

/// `history:` section: when each image was first seen and last used, kept in one file that
/// the agent writes and `prune` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Keep the history. Default true. The agent writes the file (creating its directory);
    /// `prune` reads it when present and writes it when its directory exists.
    pub enabled: bool,
    /// The history file. Default `/var/lib/stagesweep/history.json`.
    pub path: PathBuf,
    /// What a gap in the events (daemon restart, lost events) means for known images.
    /// Default `assume_used`.
    pub gap_policy: GapPolicy,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from(DEFAULT_HISTORY_PATH),
            gap_policy: GapPolicy::AssumeUsed,
        }
    }
}

/// `history.gap_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GapPolicy {
    /// Known images count as used at the end of the gap (`last_used = max(last_used, gap_end)`).
    #[default]
    AssumeUsed,
    /// Known images keep the `last_used` recorded before the gap.
    Ignore,
}

pub(super) fn history(ctx: &mut Ctx, raw: &RawHistory) -> HistoryConfig {
    let mut out = HistoryConfig::default();
    out.enabled = raw.enabled.unwrap_or(out.enabled);
    if let Some(p) = &raw.path {
        out.path = ctx
            .check(p, "history.path", |t| absolute("history.path", t))
            .unwrap_or(out.path);
    }
    if let Some(g) = &raw.gap_policy {
        out.gap_policy = ctx
            .check(g, "history.gap_policy", gap_policy)
            .unwrap_or_default();
    }
    out
}

fn gap_policy(text: &str) -> Result<GapPolicy, Bad> {
    match text.trim() {
        "assume_used" => Ok(GapPolicy::AssumeUsed),
        "ignore" => Ok(GapPolicy::Ignore),
        _ => Err(Bad::new(
            format!("gap_policy {text:?} is not assume_used or ignore"),
            "assume_used counts known images as used when events were lost; ignore keeps their last use",
        )),
    }
}

pub(super) fn absolute(field: &str, text: &str) -> Result<PathBuf, Bad> {
    let path = PathBuf::from(text.trim());
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(Bad::new(
            format!("{field} {text:?} is not an absolute path"),
            "write the full path, e.g. /var/lib/stagesweep/history.json",
        ))
    }
}
