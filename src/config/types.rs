//! The validated, typed configuration that the rest of stagesweep reads.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use globset::{Glob, GlobMatcher};

/// A fully validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach the engine.
    pub docker: DockerConfig,
    /// Images that are never deleted, whatever a policy says.
    pub protect: Protect,
    /// Policies in order: the first whose `match` selects an image decides its fate.
    pub policies: Vec<Policy>,
    /// `build_cache:` rules in order: the first that selects a BuildKit cache record decides.
    pub build_cache: Vec<super::CacheRule>,
    /// Agent settings (schedule, lock, shutdown); used by `stagesweep agent` and the lock by `prune`.
    pub agent: AgentConfig,
    /// The metrics and health HTTP listener of the agent.
    pub metrics: MetricsConfig,
}

/// `docker:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// Engine address (`unix://…`, `tcp://…`); `None` means `$DOCKER_HOST`, then the local socket.
    pub host: Option<String>,
    /// Timeout per API call (whole seconds; at least 1s). Default 60s.
    pub timeout: Duration,
    /// Deletions in flight at once. Default 4.
    pub concurrency: usize,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            host: None,
            timeout: Duration::from_secs(60),
            concurrency: 4,
        }
    }
}

/// `protect:` section.
#[derive(Debug, Clone, Default)]
pub struct Protect {
    /// Globs on `repo:tag`; an image with any matching reference is protected.
    pub references: Vec<RefGlob>,
    /// Label predicates; an image matching any one is protected.
    pub labels: Vec<LabelPredicate>,
}

/// One retention policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Unique name, used in reasons, logs and metrics.
    pub name: String,
    /// Which images the policy selects.
    pub matcher: Matcher,
    /// Grace period: younger images are kept. Default 1h.
    pub min_age: Duration,
    /// Older images are deleted.
    pub max_age: Option<Duration>,
    /// Keep the N newest images per group (N ≥ 1).
    pub keep_last: Option<usize>,
    /// How `keep_last` and `max_total_size` group images.
    pub group_by: GroupBy,
    /// Delete oldest first until the group totals at most this many bytes.
    pub max_total_size: Option<u64>,
    /// With `match.references`: also delete images that carry references the globs do not
    /// match (removing those references too). Default false: such images are kept.
    pub all_references: bool,
}

impl Policy {
    /// True when the policy has none of `max_age`, `keep_last`, `max_total_size`:
    /// it then deletes every matched image older than `min_age`.
    #[must_use]
    pub fn is_plain_prune(&self) -> bool {
        self.max_age.is_none() && self.keep_last.is_none() && self.max_total_size.is_none()
    }
}

/// `match:` of a policy. All given criteria must hold.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// All must hold.
    pub labels: Vec<LabelPredicate>,
    /// One must match a `repo:tag` of the image (untagged images have none); empty = no constraint.
    pub references: Vec<RefGlob>,
    /// Tagged / untagged constraint.
    pub dangling: Dangling,
    /// Set when the policy explicitly selects every image (`all_images: true`).
    pub all_images: bool,
}

impl Matcher {
    /// Whether an image with these references and labels is selected.
    #[must_use]
    pub fn matches(&self, references: &[String], labels: &BTreeMap<String, String>) -> bool {
        let dangling_ok = match self.dangling {
            Dangling::Any => true,
            Dangling::Only => references.is_empty(),
            Dangling::Never => !references.is_empty(),
        };
        dangling_ok
            && self.labels.iter().all(|p| p.matches(labels))
            && (self.references.is_empty() || references.iter().any(|r| self.selects_reference(r)))
    }

    /// Whether one of the `references` globs matches this reference.
    #[must_use]
    pub fn selects_reference(&self, reference: &str) -> bool {
        self.references.iter().any(|g| g.matches(reference))
    }
}

/// `dangling:` — `true` (untagged only), `false` (tagged only) or `any`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dangling {
    #[default]
    Any,
    Only,
    Never,
}

/// `group_by:` — `none`, `repository` or `label:<key>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GroupBy {
    #[default]
    None,
    Repository,
    Label(String),
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupBy::None => f.write_str("none"),
            GroupBy::Repository => f.write_str("repository"),
            GroupBy::Label(k) => write!(f, "label:{k}"),
        }
    }
}

/// A label predicate: `key`, `key=value` or `key!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelPredicate {
    /// The label is present (any value).
    Exists(String),
    /// The label is present with this value.
    Equals(String, String),
    /// The label is absent, or present with another value.
    NotEquals(String, String),
}

impl LabelPredicate {
    /// Parse `key`, `key=value` or `key!=value`; the key must not be empty.
    ///
    /// # Errors
    /// Returns a message naming the offending text when the key is empty.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (key, pred) = if let Some((k, v)) = text.split_once("!=") {
            (
                k,
                LabelPredicate::NotEquals(k.trim().to_owned(), v.to_owned()),
            )
        } else if let Some((k, v)) = text.split_once('=') {
            (k, LabelPredicate::Equals(k.trim().to_owned(), v.to_owned()))
        } else {
            (text, LabelPredicate::Exists(text.trim().to_owned()))
        };
        if key.trim().is_empty() {
            return Err(format!(
                "label predicate {text:?} has an empty key (use key, key=value or key!=value)"
            ));
        }
        Ok(pred)
    }

    /// Whether a label set satisfies the predicate.
    #[must_use]
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelPredicate::Exists(k) => labels.contains_key(k),
            LabelPredicate::Equals(k, v) => labels.get(k) == Some(v),
            LabelPredicate::NotEquals(k, v) => labels.get(k) != Some(v),
        }
    }
}

impl fmt::Display for LabelPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelPredicate::Exists(k) => f.write_str(k),
            LabelPredicate::Equals(k, v) => write!(f, "{k}={v}"),
            LabelPredicate::NotEquals(k, v) => write!(f, "{k}!={v}"),
        }
    }
}

/// A glob on `repo:tag` (`*:latest`, `registry.example.com/base/*`). `*` crosses `/`.
#[derive(Debug, Clone)]
pub struct RefGlob {
    pattern: String,
    matcher: GlobMatcher,
}

impl RefGlob {
    /// Compile a glob.
    ///
    /// # Errors
    /// Returns the glob error, naming the pattern.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let glob =
            Glob::new(pattern).map_err(|e| format!("invalid glob {pattern:?}: {}", e.kind()))?;
        Ok(Self {
            pattern: pattern.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether a `repo:tag` reference matches.
    #[must_use]
    pub fn matches(&self, reference: &str) -> bool {
        self.matcher.is_match(reference)
    }

    /// The pattern as written.
    #[must_use]
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

impl PartialEq for RefGlob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl fmt::Display for RefGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// Agent settings (top-level keys `schedule`, `timezone`, `jitter`, `run_on_start`,
/// `lock_file`, `shutdown_timeout`).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// When passes run. Default `@hourly`.
    pub schedule: crate::config::schedule::Schedule,
    /// IANA time zone the schedule is read in. Default UTC.
    pub timezone: chrono_tz::Tz,
    /// Random delay added to each tick, in `[0, jitter)`. Default 0s.
    pub jitter: Duration,
    /// Run a pass at start-up. Default true.
    pub run_on_start: bool,
    /// Lock file shared by `prune` and the agent. Default `/run/stagesweep/stagesweep.lock`.
    pub lock_file: PathBuf,
    /// How long in-flight deletions may take after SIGTERM. Default 30s.
    pub shutdown_timeout: Duration,
}

/// `metrics:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Serve `/metrics` and `/healthz`. Default true.
    pub enabled: bool,
    /// Listen address. Default `127.0.0.1:9477`.
    pub listen: SocketAddr,
}
