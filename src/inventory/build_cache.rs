//! BuildKit's build cache records as plain values, as the engine's disk usage lists them.
//!
//! Owns the domain types the engine fills in and the planner reads. Knows nothing about
//! bollard, HTTP or the clock.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The type of a build cache record (`Type` in `GET /system/df`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheType {
    /// A layer produced by a build step (`RUN`, `COPY`, …), including builder stages.
    Regular,
    /// A build context or Dockerfile sent by the client.
    SourceLocal,
    /// The content of a `RUN --mount=type=cache` mount.
    ExecCachemount,
    /// A frontend (Dockerfile parser) image.
    Frontend,
    /// BuildKit's own bookkeeping.
    Internal,
    /// A git checkout used as build context.
    SourceGitCheckout,
    /// A type this version does not know (a newer engine).
    Other(String),
}

impl CacheType {
    /// Every type a configuration may name, as the engine spells it.
    pub const NAMES: [&'static str; 6] = [
        "regular",
        "source.local",
        "exec.cachemount",
        "frontend",
        "internal",
        "source.git.checkout",
    ];

    /// The type the engine reported; an empty type is `regular` (as BuildKit treats it).
    #[must_use]
    pub fn from_engine(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|| Self::Other(text.to_owned()))
    }

    /// One of [`Self::NAMES`] (or the empty string, which BuildKit treats as `regular`).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "regular" | "" => Self::Regular,
            "source.local" => Self::SourceLocal,
            "exec.cachemount" => Self::ExecCachemount,
            "frontend" => Self::Frontend,
            "internal" => Self::Internal,
            "source.git.checkout" => Self::SourceGitCheckout,
            _ => return None,
        })
    }

    /// The engine's name for the type.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Regular => "regular",
            Self::SourceLocal => "source.local",
            Self::ExecCachemount => "exec.cachemount",
            Self::Frontend => "frontend",
            Self::Internal => "internal",
            Self::SourceGitCheckout => "source.git.checkout",
            Self::Other(t) => t,
        }
    }

    /// Types that `POST /build/prune` skips unless asked for `all` records.
    #[must_use]
    pub fn needs_all(&self) -> bool {
        matches!(self, Self::Frontend | Self::Internal)
    }
}

impl fmt::Display for CacheType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CacheType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Read back as the engine's name ([`CacheType::from_engine`]): a type this version does
/// not know stays [`CacheType::Other`].
impl<'de> Deserialize<'de> for CacheType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(Self::from_engine(&text))
    }
}

/// One build cache record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheRecord {
    /// The record's ID (BuildKit's, not a `sha256:` digest).
    pub id: String,
    /// IDs of the records this one builds on (`Parent` before API 1.42, `Parents` since).
    pub parents: Vec<String>,
    #[serde(rename = "type")]
    pub kind: CacheType,
    /// What produced it (`mount / from exec /bin/sh -c make`, `local source for context`).
    pub description: String,
    /// Bytes on disk.
    pub size: u64,
    pub created: Option<DateTime<Utc>>,
    /// When a build last used it; `None` when never (then `created` counts).
    pub last_used: Option<DateTime<Utc>>,
    pub usage_count: u64,
    /// Also referenced by an image: deleting it frees nothing while the image exists.
    pub shared: bool,
    /// Held by a running build. The engine never deletes such a record.
    pub in_use: bool,
}

impl CacheRecord {
    /// The time idleness is counted from: the last use, else the creation.
    #[must_use]
    pub fn last_touched(&self) -> Option<DateTime<Utc>> {
        self.last_used.or(self.created)
    }

    /// The first 12 characters of the ID, for tables and reasons.
    #[must_use]
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

/// True while BuildKit holds any record for a running build (`InUse`): a build is running.
///
/// BuildKit builds emit no events and run no containers until they tag their result, so the
/// cache is the one place that shows a build in flight.
#[must_use]
pub fn build_in_progress(records: &[CacheRecord]) -> bool {
    records.iter().any(|r| r.in_use)
}

/// The records held by running builds.
pub fn in_use(records: &[CacheRecord]) -> impl Iterator<Item = &CacheRecord> {
    records.iter().filter(|r| r.in_use)
}

/// Bytes the records take, as the engine counts them (shared records included).
#[must_use]
pub fn total_bytes(records: &[CacheRecord]) -> u64 {
    records.iter().map(|r| r.size).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_unknown_ones_are_kept() {
        for name in CacheType::NAMES {
            let t = CacheType::parse(name).expect(name);
            assert_eq!(t.as_str(), name);
            assert_eq!(CacheType::from_engine(name), t);
        }
        assert_eq!(CacheType::from_engine(""), CacheType::Regular);
        assert_eq!(
            CacheType::from_engine("source.image"),
            CacheType::Other("source.image".into())
        );
        assert_eq!(CacheType::parse("source.image"), None);
        assert!(CacheType::Internal.needs_all() && !CacheType::Regular.needs_all());
        assert_eq!(
            serde_json::to_string(&CacheType::ExecCachemount).unwrap(),
            "\"exec.cachemount\""
        );
    }

    #[test]
    fn in_use_records_mean_a_build_is_running() {
        let record = |id: &str, in_use: bool| CacheRecord {
            id: id.into(),
            parents: Vec::new(),
            kind: CacheType::Regular,
            description: String::new(),
            size: 10,
            created: None,
            last_used: None,
            usage_count: 0,
            shared: false,
            in_use,
        };
        let idle = vec![record("a", false), record("b", false)];
        assert!(!build_in_progress(&idle));
        let busy = vec![record("a", false), record("b", true)];
        assert!(build_in_progress(&busy));
        assert_eq!(
            in_use(&busy).map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(total_bytes(&busy), 20);
        assert_eq!(record("abcdefghijklmnop", false).short_id(), "abcdefghijkl");
    }
}
