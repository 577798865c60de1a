//! The `history:` section: when each image was first seen and last used, kept in one file.
//! Typed values and their validation; knows nothing of the file itself.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::RawHistory;
use super::values::{self, Bad};

/// Default `history.path`.
pub const DEFAULT_HISTORY_PATH: &str = "/var/lib/stagesweep/history.json";
/// Default `history.catch_up`.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(60);
/// Default `history.half_life`: a use counts half after 7 days.
pub const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The bounds of `history.half_life`.
const HALF_LIFE_RANGE: (Duration, Duration) = (
    Duration::from_secs(3600),
    Duration::from_secs(365 * 24 * 3600),
);
/// The longest `history.catch_up`: a pass must not wait longer than this for the events.
const MAX_CATCH_UP: Duration = Duration::from_secs(600);

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
    /// How long an agent's pass waits for its history to catch up with the engine's events
    /// (replayed and reconciled since the last connection) before it counts a gap and goes
    /// on. Default 60s, at most 10m.
    pub catch_up: Duration,
    /// How fast uses are forgotten in the use counts that `order: lfu` reads: a use counts
    /// half after one half-life. Default 7d, between 1h and 365d.
    pub half_life: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from(DEFAULT_HISTORY_PATH),
            gap_policy: GapPolicy::AssumeUsed,
            catch_up: DEFAULT_CATCH_UP,
            half_life: DEFAULT_HALF_LIFE,
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
    if let Some(c) = &raw.catch_up {
        out.catch_up = ctx
            .check(c, "history.catch_up", |t| {
                let d = values::duration("catch_up", t)?;
                if d > MAX_CATCH_UP {
                    return Err(Bad::new(
                        format!("catch_up {t:?} is longer than 10m"),
                        "a pass should not wait longer for the events; after it, a gap is counted (gap_policy)",
                    ));
                }
                Ok(d)
            })
            .unwrap_or(out.catch_up);
    }
    if let Some(h) = &raw.half_life {
        out.half_life = ctx
            .check(h, "history.half_life", half_life)
            .unwrap_or(out.half_life);
    }
    out
}

fn half_life(text: &str) -> Result<Duration, Bad> {
    let d = values::duration("half_life", text)?;
    let (min, max) = HALF_LIFE_RANGE;
    if d < min || d > max {
        return Err(Bad::new(
            format!("half_life {text:?} is not between 1h and 365d"),
            "it is how fast uses are forgotten for order: lfu (a use counts half after it), e.g. 7d",
        ));
    }
    Ok(d)
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
