//! What the engine answers, as plain values: its identity, an image's state now, events,
//! what a DELETE did, the data usage (`/system/df`) and a build cache prune.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::EngineError;
use crate::inventory::{CacheRecord, ImageId};

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

/// Where the engine keeps image layers (`/info` `Driver` and `DriverStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStore {
    /// A graph driver (`overlay2`, Podman's `overlay`, …): layers live under the data root
    /// (`DockerRootDir`). An empty name when the engine did not say.
    Graphdriver(String),
    /// The containerd image store (`DriverStatus` has `driver-type`
    /// `io.containerd.snapshotter.v1`): content and snapshots live under containerd's root,
    /// which the API does not report.
    Containerd,
}

impl Default for ImageStore {
    fn default() -> Self {
        ImageStore::Graphdriver(String::new())
    }
}

impl std::fmt::Display for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageStore::Graphdriver(name) if name.is_empty() => f.write_str("graph driver"),
            ImageStore::Graphdriver(name) => write!(f, "graph driver {name}"),
            ImageStore::Containerd => f.write_str("containerd image store"),
        }
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
    /// Where its image layers live: under `root_dir` (a graph driver) or containerd's root.
    pub image_store: ImageStore,
    /// The engine's address when it is reached over the network (`tcp://`, `http://`,
    /// `https://`, directly or through a docker CLI context): its filesystems are not this
    /// machine's. `None` for a unix socket.
    pub remote: Option<String>,
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

/// What the engine's data usage (`GET /system/df`, `docker system df`) says, as plain
/// values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataUsage {
    /// `SharedSize` per image: bytes of its layers that other images also hold. Only images
    /// the engine computed it for (on Docker 20.10 the top-level ones, not intermediates).
    pub shared_sizes: Vec<(ImageId, u64)>,
    /// BuildKit's cache records; `None` when the answer has no build cache section at all.
    pub build_cache: Option<Vec<CacheRecord>>,
    /// `LayersSize`: the bytes of every image layer, each counted once; `None` when the
    /// engine does not tell it (absent, or 0 beside a non-empty image list, as Podman answers).
    pub layers_size: Option<u64>,
}

/// One `POST /build/prune` for exactly these records, with the checks the engine makes at
/// deletion time so that a record that changed since the plan is not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePrune {
    /// The records' IDs (sent as one anchored `id` filter: `^(a|b)$`).
    pub ids: Vec<String>,
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
