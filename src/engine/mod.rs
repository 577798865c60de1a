//! The narrow interface to a container engine, and its errors.
//!
//! `docker` holds the bollard implementation (the only place bollard types appear);
//! `fake` holds an in-memory engine for fast tests. Nothing here decides anything.

pub mod docker;
pub mod fake;
pub mod watch;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cache::{CacheRecord, CacheType};
use crate::inventory::{Container, Image, ImageId};

/// Which engine answers the Docker Engine API (detected at connect time from `/version`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Docker (moby): Docker Engine, Docker Desktop, Debian's docker.io, …
    #[default]
    Docker,
    /// Podman's Docker-compatible service (`podman system service`).
    Podman,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
        })
    }
}

/// What `GET /info` says about the engine. Fields an engine may leave out are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineInfo {
    /// Docker or Podman (from `/version`, not `/info`).
    pub kind: EngineKind,
    /// The engine's ID (`/info` `ID`): stable across restarts, new for a new data root.
    pub id: String,
    /// The engine host's name.
    pub name: String,
    /// The engine's version (`20.10.24`, `4.3.1`).
    pub server_version: String,
    /// The engine's clock when it answered.
    pub system_time: Option<DateTime<Utc>>,
    /// Where the engine keeps its data (`DockerRootDir`).
    pub root_dir: Option<PathBuf>,
}

/// One image as `GET /images/{name}/json` shows it now: what the executor re-checks before
/// it deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageState {
    pub id: ImageId,
    /// `repo:tag` references (placeholders such as `<none>:<none>` removed).
    pub references: Vec<String>,
    /// `repo@sha256:…` references (placeholders removed).
    pub digests: Vec<String>,
    /// `Created`, when the engine gave one that parses.
    pub created: Option<DateTime<Utc>>,
    /// `Metadata.LastTagTime`, when the engine gave one (the zero time means never).
    pub last_tagged: Option<DateTime<Utc>>,
}

/// What an event is about (`Type`); only these two are ever subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Container,
    Image,
}

/// One event from `GET /events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent {
    /// `timeNano`: when the engine emitted it (its clock).
    pub time_nano: i64,
    pub kind: EventKind,
    /// `Action`: `create`, `start`, `tag`, `load`, `pull`, `import`, `delete`, …
    pub action: String,
    /// `Actor.ID`: a container ID; for image events an image ID or a reference (`pull`).
    pub actor: String,
    /// `Actor.Attributes.image`: for container events, the image as the user typed it.
    pub image: Option<String>,
}

/// The events an engine streams: replayed ones first, then live ones. Ends when the engine
/// stops (it does not reconnect by itself).
pub type EventStream = futures_util::stream::BoxStream<'static, Result<EngineEvent, EngineError>>;

/// What the daemon reported for one `DELETE /images/{name}` call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// References that were untagged.
    pub untagged: Vec<String>,
    /// IDs the daemon reports as deleted: the image's, and its layers' (not image IDs).
    pub deleted: Vec<String>,
}

/// What the engine's disk usage (`GET /system/df`) says, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// `SharedSize` per image: bytes of its layers that other images also hold. Only images
    /// the engine computed it for (on Docker 20.10 the top-level ones, not intermediates).
    pub shared_sizes: Vec<(ImageId, u64)>,
    /// BuildKit's cache records; `None` when the answer has no build cache section at all.
    pub build_cache: Option<Vec<CacheRecord>>,
}

/// One `POST /build/prune` for exactly these records, with the checks the engine makes at
/// deletion time so that a record that changed since the plan is not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePrune {
    /// The records' IDs (sent as one anchored `id` filter: `^(a|b)$`).
    pub ids: Vec<String>,
    /// The records' type (sent as a `type` filter).
    pub kind: CacheType,
    /// Let the engine delete a shared, `internal` or `frontend` record (`all=true`).
    pub all: bool,
    /// Only if not used for this long (`unused-for` filter).
    pub unused_for: Option<Duration>,
    /// Only while the cache holds more than this many bytes (`keep-storage` before API 1.48,
    /// `reserved-space` and `max-used-space` since).
    pub keep_storage: Option<u64>,
}

/// What the engine answered to a [`CachePrune`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePruneReport {
    /// IDs of the records deleted.
    pub deleted: Vec<String>,
    /// Bytes the engine says it freed.
    pub reclaimed_bytes: u64,
}

/// Errors from the engine, classified by what the caller should do about them.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The engine could not be reached at all.
    #[error("cannot reach docker at {host}: {cause} ({hint})")]
    Unreachable {
        host: String,
        cause: String,
        hint: String,
    },
    /// 404: the image or reference no longer exists.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: the daemon refuses (in use, has dependent children, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The call did not answer within the configured timeout (headers and body together).
    #[error(
        "docker at {host} did not answer within {seconds}s ({what}); is the daemon stuck or overloaded? check it, or raise docker.timeout"
    )]
    Timeout {
        host: String,
        seconds: u64,
        what: String,
    },
    /// The engine answered something that is not a Docker API answer: not HTTP, not the JSON
    /// the call expects. Nothing it says can be trusted.
    #[error(
        "docker at {host} sent an answer stagesweep cannot read ({what}): {cause} (is DOCKER_HOST a docker daemon, or is a proxy in between?)"
    )]
    Garbled {
        host: String,
        what: String,
        cause: String,
    },
    /// Any other failure (non-2xx answer, malformed answer, …).
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    /// True when the engine is gone or cannot be trusted (unreachable, no answer in time,
    /// unreadable answers) rather than refusing one request: a pass stops starting deletions
    /// and the agent backs off.
    #[must_use]
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            EngineError::Unreachable { .. }
                | EngineError::Timeout { .. }
                | EngineError::Garbled { .. }
        )
    }
}

/// The few engine calls a pass needs.
pub trait Engine: Send + Sync {
    /// Check that the engine answers.
    fn ping(&self) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// All images, intermediate ones included (`all=true`).
    fn list_images(&self) -> impl Future<Output = Result<Vec<Image>, EngineError>> + Send;

    /// The engine's identity, clock and data root (`GET /info`).
    fn info(&self) -> impl Future<Output = Result<EngineInfo, EngineError>> + Send;

    /// One image by ID or reference, as it is now (`GET /images/{name}/json`); a missing
    /// image is [`EngineError::NotFound`].
    fn inspect_image(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ImageState, EngineError>> + Send;

    /// All containers, running or not (`all=true`).
    fn list_containers(&self) -> impl Future<Output = Result<Vec<Container>, EngineError>> + Send;

    /// `DELETE /images/{name}`, never forced, asking the engine not to delete parents
    /// (`noprune`). `name` is a reference or an image ID.
    fn remove_image(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<RemoveReport, EngineError>> + Send;

    /// True when deleting an image also deletes its untagged parents left without children,
    /// whatever `noprune` says (Podman 4): the executor must check the parents first.
    fn deletes_parents(&self) -> bool;
    /// Container and image events (`type=container`, `type=image`: never unfiltered, since
    /// Podman's `system` events end the stream). `since`/`until` are `timeNano` values:
    /// events the engine still buffers from `since` on are replayed first; without `until`
    /// the stream then goes on live.
    fn events(&self, since: Option<i64>, until: Option<i64>) -> EventStream;

    /// Disk usage (`GET /system/df` on the negotiated API version): layer sharing per image
    /// and the build cache records.
    fn disk_usage(&self) -> impl Future<Output = Result<DiskUsage, EngineError>> + Send;

    /// Delete exactly the records `request` names, when its checks still hold
    /// (`POST /build/prune`), never an in-use one, children before parents within the call.
    /// An engine without a build cache API answers [`EngineError::NotFound`].
    fn prune_build_cache(
        &self,
        request: &CachePrune,
    ) -> impl Future<Output = Result<CachePruneReport, EngineError>> + Send;

    /// A human description of where the engine is (for messages).
    fn describe(&self) -> String;
}
