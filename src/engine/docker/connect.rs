//! Connecting to the engine: the client for a unix socket, plain HTTP or TLS, the API
//! version negotiation and the engine's kind (Docker or Podman), and every call bounded by
//! the configured timeout with its error classified.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;

use super::classify::classify;
use super::context::{self, DEFAULT_HOST, DEFAULT_TLS_HOST, Endpoint};
use super::tls::{self, TlsSettings};
use super::{convert, podman, pool};
use crate::config::DockerConfig;
use crate::engine::{EngineError, EngineKind, ImageStore};

/// A connected Docker engine (API version negotiated).
#[derive(Debug, Clone)]
pub struct DockerEngine {
    pub(super) docker: Docker,
    pub(super) host: String,
    /// The docker CLI context that chose `host`, if one did.
    pub(super) context: Option<String>,
    pub(super) timeout_secs: u64,
    pub(super) kind: EngineKind,
    /// The engine's version (`/version` `Version`: `20.10.24`, `4.3.1`).
    pub(super) server_version: String,
    /// Docker's image store, read from `/info` at connect; `None` for Podman, or when `/info`
    /// did not answer then or did not say (every check a store would make unnecessary is
    /// made).
    pub(super) image_store: Option<ImageStore>,
    /// Disk usage requests go one at a time (Docker 20.10 refuses concurrent ones).
    pub(super) df_lock: Arc<tokio::sync::Mutex<()>>,
    /// Image listings go one at a time (the agent's history and its pass both list; two
    /// 10 000-image answers at once would double the agent's peak memory).
    pub(super) listing_lock: Arc<tokio::sync::Mutex<()>>,
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
    let docker = client_for(&host, timeout_secs, cfg.concurrency, tls)?;
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
    // Once per connection: which engine this is decides how its names read, and its image
    // store what it deletes without complaint.
    let image_store = if kind == EngineKind::Podman {
        tracing::info!(%host, version = %server, %api,
            "connected to podman (references are fully qualified; globs also match the familiar form)");
        None
    } else {
        let info = bounded(&host, timeout_secs, "read engine info", docker.info()).await;
        // Without a `DriverStatus` the store is unknown: every check a store would make
        // unnecessary is made.
        let store = (info.as_ref().ok())
            .filter(|i| i.driver_status.is_some())
            .map(|i| convert::image_store(i.driver.clone(), i.driver_status.as_deref()));
        if let Err(e) = &info {
            tracing::debug!(%host, version = %server, %api, error = %e,
                "connected to docker; its image store is unknown (/info did not answer)");
        } else {
            tracing::debug!(%host, version = %server, %api, store = ?store, "connected to docker");
        }
        store
    };
    Ok(DockerEngine {
        docker,
        host,
        context: endpoint.context().map(str::to_owned),
        timeout_secs,
        kind,
        server_version: server,
        image_store,
        df_lock: Arc::default(),
        listing_lock: Arc::default(),
    })
}

/// Whether `host` is reached over the network rather than a unix socket.
fn is_network_host(host: &str) -> bool {
    ["tcp://", "http://", "https://", "ssh://"]
        .iter()
        .any(|scheme| host.starts_with(scheme))
}

/// Whether a client for `host` speaks TLS.
fn uses_tls(host: &str, tls: &TlsSettings) -> bool {
    host.starts_with("https://") || (host.starts_with("tcp://") && tls.verify)
}

/// Build (not yet use) a client for `host`: unix socket, plain HTTP or TLS, each keeping up
/// to `concurrency` connections open between calls ([`pool`]).
pub(super) fn client_for(
    host: &str,
    timeout_secs: u64,
    concurrency: usize,
    tls: &TlsSettings,
) -> Result<Docker, EngineError> {
    if uses_tls(host, tls) {
        return tls::client(host, timeout_secs, concurrency, tls);
    }
    let plain = if let Some(path) = host.strip_prefix("unix://") {
        pool::unix(path, timeout_secs, concurrency)
    } else if host.starts_with('/') {
        pool::unix(host, timeout_secs, concurrency)
    } else if host.starts_with("http://") && tls.verify {
        Err(BollardError::UnsupportedURISchemeError {
            uri: format!("{host} (DOCKER_TLS_VERIFY is set but the host says plain http)"),
        })
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        pool::http(host, timeout_secs, concurrency)
    } else {
        Err(BollardError::UnsupportedURISchemeError {
            uri: format!("{host} (unsupported scheme)"),
        })
    };
    plain.map_err(|e| classify(e, host, timeout_secs, "connect"))
}

/// A failed call: bollard's error, or a TLS connection the daemon closed (with its cause).
pub(super) enum CallError {
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
pub(super) async fn bounded<T, E: Into<CallError>>(
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

    /// True when the engine is reached over the network (`tcp://`, `http://`, `https://`),
    /// directly or through a docker CLI context: a path on this machine is not its disk,
    /// even when the address is this machine's (a forwarded port cannot be told apart).
    pub fn is_remote(&self) -> bool {
        is_network_host(&self.host)
    }

    pub(super) async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, EngineError> {
        bounded(&self.host, self.timeout_secs, what, call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::docker::transport::HINT_SCHEME;

    fn hint_of(e: &EngineError) -> &str {
        match e {
            EngineError::Unreachable { hint, .. } => hint,
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn network_hosts_are_remote_and_sockets_are_not() {
        for remote in [
            "tcp://127.0.0.1:2375",
            "https://h:2376",
            "http://h",
            "ssh://u@h",
        ] {
            assert!(is_network_host(remote), "{remote}");
        }
        for local in ["unix:///var/run/docker.sock", "/run/podman/podman.sock"] {
            assert!(!is_network_host(local), "{local}");
        }
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
            client_for("https://h:2376", 5, 4, &plain).expect_err("tls")
        ));
        assert!(wants_certs(
            client_for("tcp://h:2376", 5, 4, &no_certs).expect_err("tls")
        ));
        assert!(client_for("tcp://h:2375", 5, 4, &plain).is_ok());
        let http = client_for("http://h:2375", 5, 4, &no_certs).expect_err("contradiction");
        assert_eq!(hint_of(&http), HINT_SCHEME);
        assert!(client_for("http://h:2375", 5, 4, &plain).is_ok());
    }
}
