//! The validated, typed configuration that the rest of stagesweep reads.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use globset::{Glob, GlobMatcher};

use super::policy_keys::{Dangling, GroupBy, Order, Parents, When};
use super::predicate::LabelPredicate;

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
    pub build_cache: Vec<super::build_cache::CacheRule>,
    /// Agent settings (schedule, lock, shutdown); used by `stagesweep agent` and the lock by `prune`.
    pub agent: AgentConfig,
    /// The metrics and health HTTP listener of the agent.
    pub metrics: MetricsConfig,
    /// How deletions wait for running builds (build lock, detection).
    pub builds: BuildsConfig,
    /// When images were first seen and last used (`history:`).
    pub history: super::history::HistoryConfig,
    /// Disk watermarks (`disk:`); `None` when the section is absent.
    pub disk: Option<super::disk::DiskConfig>,
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
    /// Globs on references (`repo:tag` and `repo@sha256:…`), matched against every spelling
    /// of each reference; an image with any matching reference is protected.
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
    /// Grace period: younger images are kept. Default 1h; 0s allowed; at most 100 years.
    pub min_age: Duration,
    /// Older images are deleted. At least `min_age`, at most 100 years. Default none.
    pub max_age: Option<Duration>,
    /// Keep the N newest images per group (N ≥ 1), by build or tag time; images kept for
    /// another reason (in use, protected, …) take no place among the N.
    pub keep_last: Option<usize>,
    /// How `keep_last` and `max_total_size` group images.
    pub group_by: GroupBy,
    /// Delete oldest first until the group totals at most this many bytes (at most 1 EB).
    /// Default none.
    pub max_total_size: Option<u64>,
    /// With `match.references`: also delete images that carry references the globs do not
    /// match (removing those references too). Default false: such images are kept.
    pub all_references: bool,
    /// Delete images not used for this long (`last_used`, else `first_seen`).
    pub unused_for: Option<Duration>,
    /// The order in which `max_total_size` evicts. Default `lru`.
    pub order: Order,
    /// `always` (default) or only under `disk_pressure`.
    pub when: When,
    /// Whether the untagged parents nothing else needs go with a deleted image. Default
    /// `delete`.
    pub parents: Parents,
}

impl Policy {
    /// True when the policy has none of `max_age`, `keep_last`, `max_total_size`,
    /// `unused_for`: it then deletes every matched image older than `min_age`.
    #[must_use]
    pub fn is_plain_prune(&self) -> bool {
        self.max_age.is_none()
            && self.keep_last.is_none()
            && self.max_total_size.is_none()
            && self.unused_for.is_none()
    }
}

/// `match:` of a policy. All given criteria must hold.
///
/// An image's references are its `repo:tag` references and its `repo@sha256:…` digest
/// references alike: reference globs match either kind, and only an image with neither is
/// dangling.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// All must hold.
    pub labels: Vec<LabelPredicate>,
    /// One must match a reference of the image (`repo:tag` or `repo@sha256:…`; dangling
    /// images have none); empty = no constraint.
    pub references: Vec<RefGlob>,
    /// Dangling (no reference at all) / referenced constraint.
    pub dangling: Dangling,
    /// Set when the policy explicitly selects every image, or every image that its
    /// negative label predicates (`key!=value`) let through (`all_images: true`).
    pub all_images: bool,
}

impl Matcher {
    /// Whether one of the `references` globs matches this reference.
    #[must_use]
    pub fn selects_reference(&self, reference: &str) -> bool {
        self.references.iter().any(|g| g.matches(reference))
    }
}

/// A glob on a reference, `repo:tag` or `repo@sha256:…` (`*:latest`,
/// `registry.example.com/base/*`). `*` crosses `/`.
///
/// A reference matches when any of its spellings does ([`crate::reference::spellings`]): as
/// the engine reported it, in its familiar form, or fully qualified. So `keepme/*` matches
/// Podman's `localhost/keepme/x:1`, and `docker.io/library/alpine:*` Docker's `alpine:3`.
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

    /// Whether a reference (`repo:tag` or `repo@sha256:…`), in any of its spellings, matches.
    #[must_use]
    pub fn matches(&self, reference: &str) -> bool {
        crate::reference::spellings(reference).any(|s| self.matches_spelling(&s))
    }

    /// Whether this one spelling matches as it is (the planner computes the spellings once
    /// per image and calls this).
    #[must_use]
    pub fn matches_spelling(&self, spelling: &str) -> bool {
        self.matcher.is_match(spelling)
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
    pub schedule: super::schedule::Schedule,
    /// IANA time zone the schedule is read in. Default UTC.
    pub timezone: chrono_tz::Tz,
    /// Random delay added to each tick, in `[0, jitter)`. Default 0s; at most 100 years.
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
    /// What the per-group gauges (`stagesweep_group_bytes`) group the space by; `None`:
    /// `off`, no such gauges. Default `policy`.
    pub group_by: Option<super::SpaceGroup>,
    /// How many groups the gauges name (the largest); the rest are summed into `other`.
    /// 1 to 50, default 10.
    pub groups: usize,
}

/// The default of `metrics.groups`.
pub const DEFAULT_METRIC_GROUPS: usize = 10;

/// `builds:` section: how deletions wait for running builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildsConfig {
    /// The build lock: builds hold it shared (`stagesweep hold`, `flock -s`), deletions take
    /// it exclusively without waiting. Absolute path, not the pass lock's.
    /// Default `/run/stagesweep/builds.lock`.
    pub lock_file: PathBuf,
    /// Use the build lock. Default true. `false` only on a host where nothing builds: the
    /// deletions then never wait for `stagesweep hold` or `flock -s`. With `true`, a lock that
    /// cannot be used (its directory cannot be created, …) stops the pass (fail closed).
    pub lock: bool,
    /// Also defer deletions while a classic-builder step runs (a running container created
    /// from a bare image ID). Default true.
    pub detect: bool,
    /// How often a deferred pass checks again. At least 1s. Default 10s.
    pub retry: Duration,
    /// How long a pass waits for builds before it skips its deletions. Default 30m.
    pub max_defer: Duration,
}

/// Default build lock file.
pub const DEFAULT_BUILD_LOCK_FILE: &str = "/run/stagesweep/builds.lock";

impl Default for BuildsConfig {
    fn default() -> Self {
        Self {
            lock_file: PathBuf::from(DEFAULT_BUILD_LOCK_FILE),
            lock: true,
            detect: true,
            retry: Duration::from_secs(10),
            max_defer: Duration::from_secs(30 * 60),
        }
    }
}
