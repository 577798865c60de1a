//! The bollard implementation of [`super::Engine`]: the only place bollard types appear.
//!
//! Owns connecting (host resolution, API version negotiation), mapping bollard's models to
//! [`crate::inventory`] values and classifying bollard errors into [`EngineError`]. Decides
//! nothing. TLS (`https://`, `tcp://` with `DOCKER_TLS_VERIFY`) lives in [`tls`]; which
//! engine to talk to (config, `DOCKER_HOST`, the docker CLI's contexts) in [`context`]; what
//! is particular to Podman in [`podman`].

mod cache;
pub mod context;
mod df;
mod events;
mod listing;
mod podman;
mod protocol;
mod raw;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerSummary, ImageDeleteResponseItem, ImageInspect, SystemInfo};
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveImageOptionsBuilder};
use bollard::{API_DEFAULT_VERSION, Docker};
use chrono::{DateTime, Utc};

use super::{
    CachePrune, CachePruneReport, DiskUsage, Engine, EngineError, EngineInfo, EngineKind,
    ImageState, RemoveReport,
};
use crate::config::DockerConfig;
use crate::inventory::{Container, Image, ImageId, is_placeholder_reference};

pub use context::{ContextError, Endpoint};
pub use tls::TlsSettings;

/// Where the engine is when neither the config nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Where it is in that case when `DOCKER_TLS_VERIFY` is set (as with the docker CLI).
pub const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";

const HINT_NOT_RUNNING: &str = "is the docker daemon running? start it or set DOCKER_HOST";
const HINT_PERMISSION: &str = "is this user in the docker group?";
const HINT_WRONG_HOST: &str = "wrong DOCKER_HOST?";
const HINT_SCHEME: &str = "use unix:///path/to/docker.sock, tcp://host:port or https://host:port";

/// A connected Docker engine (API version negotiated).
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    host: String,
    /// The docker CLI context that chose `host`, if one did.
    context: Option<String>,
    timeout_secs: u64,
    kind: EngineKind,
    /// Disk usage requests go one at a time (Docker 20.10 refuses concurrent ones).
    df_lock: Arc<tokio::sync::Mutex<()>>,
    /// Image listings go one at a time (the agent's history and its pass both list; two
    /// 10 000-image answers at once would double the agent's peak memory).
    listing_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Connect to the engine [`Endpoint::from_env`] resolves (`cfg.host`, else `$DOCKER_HOST`,
/// else the docker CLI's context, else [`DEFAULT_HOST`]) and negotiate the API version.
/// Answers within `cfg.timeout` (whole seconds, at least 1). A context that cannot be
/// resolved is [`EngineError::Other`]; commands resolve it first to report it as a usage error.
pub async fn connect(cfg: &DockerConfig) -> Result<DockerEngine, EngineError> {
    let endpoint =
        Endpoint::from_env(cfg.host.as_deref()).map_err(|e| EngineError::Other(e.to_string()))?;
    connect_to(&endpoint, cfg).await
}

/// Connect with explicit TLS settings, ignoring contexts: the host is `cfg.host`, else
/// `$DOCKER_HOST`, else [`DEFAULT_HOST`] ([`DEFAULT_TLS_HOST`] with `tls.verify`).
pub async fn connect_with(
    cfg: &DockerConfig,
    tls: &TlsSettings,
) -> Result<DockerEngine, EngineError> {
    let default_host = if tls.verify {
        DEFAULT_TLS_HOST
    } else {
        DEFAULT_HOST
    };
    let host = cfg
        .host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok())
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| default_host.to_owned());
    let endpoint = Endpoint {
        host,
        tls: tls.clone(),
        source: context::Source::DockerHost,
    };
    connect_to(&endpoint, cfg).await
}

/// Connect to `endpoint` with the timeout of `cfg`, and negotiate the API version.
pub async fn connect_to(
    endpoint: &Endpoint,
    cfg: &DockerConfig,
) -> Result<DockerEngine, EngineError> {
    let (host, tls) = (endpoint.host.clone(), &endpoint.tls);
    let timeout_secs = cfg.timeout.as_secs().max(1);
    let docker = client_for(&host, timeout_secs, tls)?;
    let uses_tls = uses_tls(&host, tls);
    let docker = bounded(
        &host,
        timeout_secs,
        "negotiate the api version",
        async move {
            let negotiated = docker.negotiate_version().await;
            // The first request is where a TLS daemon that refuses our client certificate
            // hangs up; with TLS 1.3 that can arrive as a closed connection, not an alert.
            negotiated.map_err(
                |e| match tls::closed_during_handshake(&e).filter(|_| uses_tls) {
                    Some(cause) => Closed(cause),
                    None => Bollard(e),
                },
            )
        },
    )
    .await?;
    let version = bounded(
        &host,
        timeout_secs,
        "read the engine version",
        docker.version(),
    );
    let version = version.await?;
    let kind = podman::kind_of(&version);
    let api = docker.client_version();
    let (api, server) = (
        format!("{}.{}", api.major_version, api.minor_version),
        version.version.unwrap_or_default(),
    );
    // Once per connection: which engine this is decides how its names read.
    if kind == EngineKind::Podman {
        tracing::info!(%host, version = %server, %api,
            "connected to podman (references are fully qualified; globs also match the familiar form)");
    } else {
        tracing::debug!(%host, version = %server, %api, "connected to docker");
    }
    Ok(DockerEngine {
        docker,
        host,
        context: endpoint.context().map(str::to_owned),
        timeout_secs,
        kind,
        df_lock: Arc::default(),
        listing_lock: Arc::default(),
    })
}

/// Whether a client for `host` speaks TLS.
fn uses_tls(host: &str, tls: &TlsSettings) -> bool {
    host.starts_with("https://") || (host.starts_with("tcp://") && tls.verify)
}

/// Build (not yet use) a client for `host`: unix socket, plain HTTP or TLS.
fn client_for(host: &str, timeout_secs: u64, tls: &TlsSettings) -> Result<Docker, EngineError> {
    if uses_tls(host, tls) {
        return tls::client(host, timeout_secs, tls);
    }
    let plain = if host.starts_with("unix://") {
        Docker::connect_with_unix(host, timeout_secs, API_DEFAULT_VERSION)
    } else if host.starts_with('/') {
        Docker::connect_with_unix(&format!("unix://{host}"), timeout_secs, API_DEFAULT_VERSION)
    } else if host.starts_with("http://") && tls.verify {
        Err(BollardError::UnsupportedURISchemeError {
            uri: format!("{host} (DOCKER_TLS_VERIFY is set but the host says plain http)"),
        })
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, timeout_secs, API_DEFAULT_VERSION)
    } else {
        Err(BollardError::UnsupportedURISchemeError {
            uri: format!("{host} (unsupported scheme)"),
        })
    };
    plain.map_err(|e| classify(e, host, timeout_secs, "connect"))
}

/// A failed call: bollard's error, or a TLS connection the daemon closed (with its cause).
enum CallError {
    Bollard(BollardError),
    Closed(String),
}
use CallError::{Bollard, Closed};

impl From<BollardError> for CallError {
    fn from(e: BollardError) -> Self {
        Bollard(e)
    }
}

/// Run one bollard call with an overall deadline (bollard's own timeout covers only the wait
/// for response headers) and classify its error.
async fn bounded<T, E: Into<CallError>>(
    host: &str,
    timeout_secs: u64,
    what: &str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(Duration::from_secs(timeout_secs), call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(match e.into() {
            Bollard(e) => classify(e, host, timeout_secs, what),
            Closed(cause) => tls::refused_client(host, cause),
        }),
        Err(_elapsed) => Err(EngineError::Timeout {
            host: host.to_owned(),
            seconds: timeout_secs,
            what: what.to_owned(),
        }),
    }
}

impl DockerEngine {
    /// The engine address in use (`unix://…`, `tcp://…`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Docker or Podman, as detected at connect time.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, EngineError> {
        bounded(&self.host, self.timeout_secs, what, call).await
    }
}

impl Engine for DockerEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.call("ping", self.docker.ping()).await.map(drop)
    }

    async fn list_images(&self) -> Result<Vec<Image>, EngineError> {
        const WHAT: &str = "list images";
        let _one_at_a_time = self.listing_lock.lock().await;
        let path = listing::path(raw::ApiVersion::of(&self.docker));
        let read = async {
            use futures_util::TryStreamExt as _;
            let mut answer = std::pin::pin!(raw::get_stream(&self.docker, &path));
            let mut reader = listing::Reader::default();
            while let Some(chunk) = answer.try_next().await? {
                if let Err(e) = reader.feed(&chunk) {
                    return Ok(Err(e));
                }
            }
            Ok::<_, BollardError>(reader.finish())
        };
        self.call(WHAT, read).await?.map_err(|e| match e {
            listing::Unreadable::Image(e) => e,
            listing::Unreadable::Text(cause) => EngineError::Garbled {
                host: self.host.clone(),
                what: WHAT.to_owned(),
                cause: format!("not the JSON expected: {cause}"),
            },
        })
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self.call("read engine info", self.docker.info()).await?;
        Ok(EngineInfo {
            kind: self.kind,
            ..to_engine_info(info)
        })
    }

    async fn inspect_image(&self, name: &str) -> Result<ImageState, EngineError> {
        let what = format!("inspect image {name}");
        let inspect = self.call(&what, self.docker.inspect_image(name)).await?;
        to_image_state(name, inspect)
    }

    async fn list_containers(&self) -> Result<Vec<Container>, EngineError> {
        let opts = ListContainersOptionsBuilder::new().all(true).build();
        let summaries = self
            .call("list containers", self.docker.list_containers(Some(opts)))
            .await?;
        summaries
            .into_iter()
            .filter_map(|s| to_container(s).transpose())
            .collect()
    }

    async fn remove_image(&self, name: &str) -> Result<RemoveReport, EngineError> {
        // `platforms` stays unset: bollard 0.21 fails to serialize its Vec.
        let opts = RemoveImageOptionsBuilder::new()
            .force(false)
            .noprune(true)
            .build();
        let what = format!("remove image {name}");
        let items = self
            .call(&what, self.docker.remove_image(name, Some(opts), None))
            .await?;
        Ok(to_remove_report(items))
    }

    /// Docker honours `noprune`; Podman 4 deletes untagged parents left childless anyway.
    fn deletes_parents(&self) -> bool {
        self.kind == EngineKind::Podman
    }

    fn events(&self, since: Option<i64>, until: Option<i64>) -> super::EventStream {
        self.event_stream(since, until)
    }

    async fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        self.read_disk_usage().await
    }

    async fn prune_build_cache(
        &self,
        request: &CachePrune,
    ) -> Result<CachePruneReport, EngineError> {
        self.prune_one_record(request).await
    }

    fn describe(&self) -> String {
        let v = self.docker.client_version();
        let via = self
            .context
            .as_ref()
            .map_or_else(String::new, |c| format!(", context {c}"));
        format!(
            "{} at {} (api {}.{}{via})",
            self.kind, self.host, v.major_version, v.minor_version
        )
    }
}

/// An ID the engine gave that does not parse: the listing is not trusted, the pass stops.
fn malformed(what: &str, id: &str) -> EngineError {
    EngineError::Other(format!(
        "docker listed {what} with a malformed image ID {id:?} (expected sha256:<64 hex digits>); \
         nothing was deleted — is this a Docker-compatible engine?"
    ))
}

pub(super) fn image_id(what: &str, id: &str) -> Result<ImageId, EngineError> {
    id.parse().map_err(|_| malformed(what, id))
}

/// `RepoTags` and `RepoDigests` as tags and digest references, without the engine's
/// placeholders for "none". Podman also lists the `repo@sha256:…` of an image pulled by
/// digest among its `RepoTags`: that is a digest, not a tag.
pub(super) fn tags_and_digests(
    tags: Vec<String>,
    digests: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let real = |r: &String| !is_placeholder_reference(r);
    let mut digests: Vec<String> = digests.into_iter().filter(real).collect();
    let mut references = Vec::with_capacity(tags.len());
    for t in tags.into_iter().filter(real) {
        if !t.contains('@') {
            references.push(t);
        } else if !digests.contains(&t) {
            digests.push(t);
        }
    }
    // Sized to fit, and no allocation at all when empty: an untagged image comes listed
    // with `<none>:<none>` and `<none>@<none>`, whose vectors would otherwise stay allocated
    // (≈ 150 bytes an image, most of a builder host's images).
    references.shrink_to_fit();
    digests.shrink_to_fit();
    (references, digests)
}

/// An RFC 3339 time from the engine; `None` when missing or unparsable.
fn engine_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn to_engine_info(info: SystemInfo) -> EngineInfo {
    EngineInfo {
        kind: EngineKind::Docker,
        id: info.id.unwrap_or_default(),
        name: info.name.unwrap_or_default(),
        server_version: info.server_version.unwrap_or_default(),
        system_time: engine_time(info.system_time.as_deref()),
        root_dir: info
            .docker_root_dir
            .filter(|d| !d.is_empty())
            .map(Into::into),
    }
}

fn to_image_state(name: &str, inspect: ImageInspect) -> Result<ImageState, EngineError> {
    let id = image_id(
        &format!("image {name} on inspect"),
        inspect.id.as_deref().unwrap_or_default(),
    )?;
    // The zero time (`0001-01-01T00:00:00Z`) means "never tagged".
    let last_tagged = engine_time(inspect.metadata.and_then(|m| m.last_tag_time).as_deref())
        .filter(|t| t.timestamp() > 0);
    let (references, digests) = tags_and_digests(
        inspect.repo_tags.unwrap_or_default(),
        inspect.repo_digests.unwrap_or_default(),
    );
    Ok(ImageState {
        id,
        references,
        digests,
        created: engine_time(inspect.created.as_deref()),
        last_tagged,
    })
}

/// `None` for a container without an image: the classic builder creates one (`Image` and
/// `ImageID` empty) for the first step after `FROM scratch`. It uses no image, so it keeps
/// none; failing the listing on it would fail every pass that meets such a build.
fn to_container(s: ContainerSummary) -> Result<Option<Container>, EngineError> {
    let id = s.id.unwrap_or_default();
    let raw_image_id = s.image_id.as_deref().unwrap_or_default();
    if raw_image_id.is_empty() && s.image.as_deref().unwrap_or_default().is_empty() {
        return Ok(None);
    }
    let what = format!("container {}", crate::inventory::short_id(&id));
    let image_id = image_id(&what, raw_image_id)?;
    Ok(Some(Container {
        id,
        image_id,
        image: s.image.unwrap_or_default(),
        state: s.state.map(|st| st.to_string()).unwrap_or_default(),
    }))
}

/// The daemon's delete answer; deleted image IDs in the `sha256:` form (Podman gives bare
/// hex), other entries (layers) as they came.
fn to_remove_report(items: Vec<ImageDeleteResponseItem>) -> RemoveReport {
    let mut report = RemoveReport::default();
    for item in items {
        report.untagged.extend(item.untagged);
        report
            .deleted
            .extend(item.deleted.map(|d| match d.parse::<ImageId>() {
                Ok(id) => id.to_string(),
                Err(_) => d,
            }));
    }
    report
}

/// Classify a bollard error by what the caller should do about it.
fn classify(err: BollardError, host: &str, timeout_secs: u64, what: &str) -> EngineError {
    let unreachable = |cause: String, hint: &str| EngineError::Unreachable {
        host: host.to_owned(),
        cause,
        hint: hint.to_owned(),
    };
    match err {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => EngineError::NotFound(message),
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => EngineError::Conflict(message),
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } if podman::is_refusal(status_code, &message) => EngineError::Conflict(message),
        BollardError::DockerResponseServerError {
            status_code: 400,
            message,
        } if message.contains("HTTPS server") => {
            unreachable(tls::CAUSE_WANTS_TLS.to_owned(), tls::HINT_WANTS_TLS)
        }
        BollardError::RequestTimeoutError => EngineError::Timeout {
            host: host.to_owned(),
            seconds: timeout_secs,
            what: what.to_owned(),
        },
        BollardError::SocketNotFoundError(_) => {
            unreachable("no such file or directory".to_owned(), HINT_NOT_RUNNING)
        }
        BollardError::UnsupportedURISchemeError { uri } => {
            unreachable(format!("cannot use {uri}"), HINT_SCHEME)
        }
        other => tls::classify_handshake(&other, host)
            .or_else(|| classify_transport(&other, host, timeout_secs, what))
            .or_else(|| protocol::classify(&other, host, what))
            .unwrap_or_else(|| EngineError::Other(format!("{what} at {host}: {other}"))),
    }
}

/// Connection-level failures, found as an `io::Error` anywhere in the source chain.
fn classify_transport(
    err: &BollardError,
    host: &str,
    timeout_secs: u64,
    what: &str,
) -> Option<EngineError> {
    use std::io::ErrorKind as K;
    let io = io_error_in_chain(err)?;
    let tcp = !(host.starts_with("unix://") || host.starts_with('/'));
    let hint = match io.kind() {
        K::TimedOut => {
            return Some(EngineError::Timeout {
                host: host.to_owned(),
                seconds: timeout_secs,
                what: what.to_owned(),
            });
        }
        K::PermissionDenied => HINT_PERMISSION,
        K::ConnectionRefused if tcp => HINT_WRONG_HOST,
        K::NotFound
        | K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::NotConnected
        | K::UnexpectedEof => HINT_NOT_RUNNING,
        K::AddrNotAvailable | K::HostUnreachable | K::NetworkUnreachable => HINT_WRONG_HOST,
        _ => return None,
    };
    Some(EngineError::Unreachable {
        host: host.to_owned(),
        cause: os_error_text(io),
        hint: hint.to_owned(),
    })
}

fn io_error_in_chain(err: &BollardError) -> Option<&std::io::Error> {
    // `IOError` is `#[error(transparent)]`: its `source()` skips the io::Error itself.
    if let BollardError::IOError { err } = err {
        return Some(err);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = e.source();
    }
    None
}

/// `Connection refused (os error 111)` → `connection refused`.
fn os_error_text(io: &std::io::Error) -> String {
    let text = io.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text.as_str(),
    };
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use bollard::models::ContainerSummaryStateEnum;

    use super::*;

    const UNIX: &str = "unix:///run/x/docker.sock";
    const TCP: &str = "tcp://127.0.0.1:1";
    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn server(status_code: u16, message: &str) -> BollardError {
        BollardError::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        }
    }

    fn io_err(kind: io::ErrorKind, text: &str) -> BollardError {
        BollardError::IOError {
            err: io::Error::new(kind, text),
        }
    }

    fn hint_of(e: &EngineError) -> &str {
        match e {
            EngineError::Unreachable { hint, .. } => hint,
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn classify_maps_status_codes() {
        let e = classify(
            server(404, "No such image: x:1"),
            UNIX,
            5,
            "remove image x:1",
        );
        assert_eq!(e, EngineError::NotFound("No such image: x:1".into()));
        let msg = "conflict: unable to remove repository reference \"x:1\" (must force)";
        let e = classify(server(409, msg), UNIX, 5, "remove image x:1");
        assert_eq!(e, EngineError::Conflict(msg.into()));
        let e = classify(server(500, "boom"), UNIX, 5, "list images");
        assert!(
            matches!(&e, EngineError::Other(m) if m.contains("boom") && m.contains("list images")),
            "{e:?}"
        );
    }

    #[test]
    fn podman_multi_tag_delete_by_id_is_a_conflict() {
        let msg = "unable to delete image \"1f15\" by ID with more than one tag ([a:1 b:1]): please force removal";
        let e = classify(server(500, msg), UNIX, 5, "remove image 1f15");
        assert_eq!(e, EngineError::Conflict(msg.into()));
    }

    #[test]
    fn classify_maps_timeouts() {
        let e = classify(BollardError::RequestTimeoutError, UNIX, 7, "list images");
        assert_eq!(
            e,
            EngineError::Timeout {
                host: UNIX.into(),
                seconds: 7,
                what: "list images".into()
            }
        );
        let e = classify(io_err(io::ErrorKind::TimedOut, "timed out"), TCP, 3, "ping");
        assert_eq!(
            e,
            EngineError::Timeout {
                host: TCP.into(),
                seconds: 3,
                what: "ping".into()
            }
        );
    }

    #[test]
    fn classify_gives_hints_for_connection_failures() {
        let missing = classify(
            BollardError::SocketNotFoundError("/run/x".into()),
            UNIX,
            5,
            "connect",
        );
        assert_eq!(hint_of(&missing), HINT_NOT_RUNNING);
        let denied = classify(
            io_err(io::ErrorKind::PermissionDenied, "Permission denied"),
            UNIX,
            5,
            "ping",
        );
        assert_eq!(hint_of(&denied), HINT_PERMISSION);
        let refused_tcp = classify(
            io_err(io::ErrorKind::ConnectionRefused, "refused"),
            TCP,
            5,
            "ping",
        );
        assert_eq!(hint_of(&refused_tcp), HINT_WRONG_HOST);
        let refused_unix = classify(
            io_err(io::ErrorKind::ConnectionRefused, "refused"),
            UNIX,
            5,
            "ping",
        );
        assert_eq!(hint_of(&refused_unix), HINT_NOT_RUNNING);
        let scheme = client_for("ssh://h", 5, &TlsSettings::default()).expect_err("unsupported");
        assert_eq!(hint_of(&scheme), HINT_SCHEME);
    }

    #[test]
    fn classify_renders_os_error_text_lowercase() {
        let err = BollardError::IOError {
            err: io::Error::from_raw_os_error(111),
        };
        let e = classify(err, TCP, 5, "ping");
        assert_eq!(
            e.to_string(),
            "cannot reach docker at tcp://127.0.0.1:1: connection refused (wrong DOCKER_HOST?)"
        );
    }

    #[test]
    fn other_io_errors_are_other() {
        let e = classify(
            io_err(io::ErrorKind::InvalidData, "bad"),
            UNIX,
            5,
            "list images",
        );
        assert!(matches!(e, EngineError::Other(_)), "{e:?}");
    }

    #[test]
    fn tls_is_chosen_by_scheme_and_verify() {
        let no_certs = TlsSettings::verify_with(std::env::temp_dir().join("stagesweep-no-certs"));
        let plain = TlsSettings {
            verify: false,
            ..no_certs.clone()
        };
        // TLS clients check the certificate files first: a missing one proves TLS was chosen.
        let wants_certs = |e: EngineError| hint_of(&e) == tls::HINT_CERT_PATH;
        assert!(wants_certs(
            client_for("https://h:2376", 5, &plain).expect_err("tls")
        ));
        assert!(wants_certs(
            client_for("tcp://h:2376", 5, &no_certs).expect_err("tls")
        ));
        assert!(client_for("tcp://h:2375", 5, &plain).is_ok());
        let http = client_for("http://h:2375", 5, &no_certs).expect_err("contradiction");
        assert_eq!(hint_of(&http), HINT_SCHEME);
        assert!(client_for("http://h:2375", 5, &plain).is_ok());
    }

    #[test]
    fn plain_http_to_a_tls_daemon_says_so() {
        let msg = "Client sent an HTTP request to an HTTPS server.";
        let e = classify(server(400, msg), TCP, 5, "ping");
        assert_eq!(hint_of(&e), tls::HINT_WANTS_TLS);
    }

    #[test]
    fn a_digest_among_the_tags_is_a_digest() {
        // Podman lists an image pulled by digest with `repo@sha256:…` in RepoTags too.
        let d = "127.0.0.1:5000/app@sha256:ff".to_owned();
        let (tags, digests) = tags_and_digests(
            vec![d.clone(), "app:1".into(), "other@sha256:ee".into()],
            vec![d.clone()],
        );
        assert_eq!(tags, vec!["app:1".to_owned()]);
        assert_eq!(digests, vec![d, "other@sha256:ee".to_owned()]);
    }

    #[test]
    fn an_untagged_image_holds_no_reference_vectors() {
        let (tags, digests) =
            tags_and_digests(vec!["<none>:<none>".into()], vec!["<none>@<none>".into()]);
        assert!(tags.is_empty() && digests.is_empty());
        assert_eq!(
            (tags.capacity(), digests.capacity()),
            (0, 0),
            "nothing allocated"
        );
        // As a listing grows its vectors: room for more than the one digest it holds.
        let mut listed = Vec::with_capacity(4);
        listed.extend(["app@sha256:ff".to_owned()]);
        let (_, digests) = tags_and_digests(Vec::new(), listed);
        assert_eq!(digests.capacity(), 1);
    }

    #[test]
    fn image_inspect_maps_tags_times_and_the_zero_tag_time() {
        use bollard::models::ImageInspectMetadata;
        let inspect = |last: &str| ImageInspect {
            id: Some(A.into()),
            repo_tags: Some(vec!["app:1".into()]),
            repo_digests: Some(vec!["<none>@<none>".into(), "app@sha256:ff".into()]),
            created: Some("2024-05-06T07:08:09.123456789Z".into()),
            metadata: Some(ImageInspectMetadata {
                last_tag_time: Some(last.into()),
            }),
            ..ImageInspect::default()
        };
        let state = to_image_state("app:1", inspect("2025-01-02T03:04:05Z")).unwrap();
        assert_eq!(state.id.to_string(), A);
        assert_eq!(state.references, vec!["app:1".to_owned()]);
        assert_eq!(state.digests, vec!["app@sha256:ff".to_owned()]);
        assert_eq!(state.created.map(|t| t.timestamp()), Some(1_714_979_289));
        assert_eq!(
            state.last_tagged.map(|t| t.timestamp()),
            Some(1_735_787_045)
        );
        let never = to_image_state("app:1", inspect("0001-01-01T00:00:00Z")).unwrap();
        assert_eq!(never.last_tagged, None);
        let garbage = to_image_state("app:1", inspect("yesterday")).unwrap();
        assert_eq!(garbage.last_tagged, None);
        let no_id = to_image_state("x", ImageInspect::default()).unwrap_err();
        assert!(no_id.to_string().contains("image x on inspect"), "{no_id}");
    }

    #[test]
    fn system_info_maps_identity_clock_and_root() {
        let info = to_engine_info(SystemInfo {
            id: Some("ABCD:EFGH".into()),
            name: Some("host1".into()),
            server_version: Some("20.10.24".into()),
            system_time: Some("2026-11-29T13:49:26.123456789+01:00".into()),
            docker_root_dir: Some("/var/lib/docker".into()),
            ..SystemInfo::default()
        });
        assert_eq!(info.id, "ABCD:EFGH");
        assert_eq!(info.server_version, "20.10.24");
        assert_eq!(info.system_time.map(|t| t.timestamp()), Some(1_795_956_566));
        assert_eq!(info.root_dir, Some("/var/lib/docker".into()));
        let empty = to_engine_info(SystemInfo::default());
        assert_eq!(empty, EngineInfo::default());
    }

    #[test]
    fn container_summary_uses_image_id() {
        let c = to_container(ContainerSummary {
            id: Some("c1".into()),
            image: Some("app:1".into()),
            image_id: Some(A.into()),
            state: Some(ContainerSummaryStateEnum::CREATED),
            ..ContainerSummary::default()
        });
        assert_eq!(
            c.unwrap(),
            Some(Container {
                id: "c1".into(),
                image_id: A.parse().unwrap(),
                image: "app:1".into(),
                state: "created".into()
            })
        );
    }

    #[test]
    fn a_classic_build_step_on_scratch_has_no_image_and_is_left_out() {
        // As listed while `FROM scratch` + `COPY` builds with DOCKER_BUILDKIT=0.
        let step = to_container(ContainerSummary {
            id: Some("3bb65ff1ace2".into()),
            image: Some(String::new()),
            image_id: Some(String::new()),
            state: Some(ContainerSummaryStateEnum::CREATED),
            ..ContainerSummary::default()
        });
        assert_eq!(step.unwrap(), None);
    }

    #[test]
    fn malformed_container_image_ids_fail_the_listing() {
        let e = to_container(ContainerSummary {
            id: Some("c1".into()),
            image: Some("app:1".into()),
            ..ContainerSummary::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("container c1"), "{e}");
    }

    #[test]
    fn remove_response_maps_items() {
        let report = to_remove_report(vec![
            ImageDeleteResponseItem {
                untagged: Some("app:1".into()),
                deleted: None,
            },
            ImageDeleteResponseItem {
                untagged: None,
                deleted: Some("sha256:aa".into()),
            },
            ImageDeleteResponseItem {
                untagged: None,
                deleted: Some("sha256:bb".into()),
            },
        ]);
        assert_eq!(report.untagged, vec!["app:1".to_owned()]);
        let podman = to_remove_report(vec![ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(A.trim_start_matches("sha256:").to_owned()),
        }]);
        assert_eq!(
            podman.deleted,
            vec![A.to_owned()],
            "bare hex in the sha256: form"
        );
        assert_eq!(
            report.deleted,
            vec!["sha256:aa".to_owned(), "sha256:bb".to_owned()]
        );
    }
}
