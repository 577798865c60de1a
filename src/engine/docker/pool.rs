//! One keep-alive connection pool per engine, shared by every call: listing, inspect,
//! DELETE, `/system/df`, `/build/prune`, the raw requests, the events stream.
//!
//! bollard 0.21.1 builds its unix and HTTP clients with `pool_max_idle_per_host(idle.max(1))`: every
//! request opens a new connection and closes it after the answer (20 000 `connect()` calls
//! for a pass that inspects and deletes 10 000 images). Here the same hyper client is built
//! with a pool keeping up to `docker.concurrency` idle connections, and handed to bollard as
//! its custom transport: bollard still builds every request (paths, queries, API version,
//! timeout, errors), we only carry it. The clones bollard makes (the raw requests' request
//! modifier) share the transport, so they share the pool. A connection goes back to the
//! pool once its answer's body is read to the end; every caller reads it to the end.
//! The same for TLS, with the rustls configuration `tls` builds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

/// How long an idle connection stays in the pool: longer than the gaps between a pass's
/// calls, shorter than the agent's interval between passes (no connection idles for hours).
const IDLE: Duration = Duration::from_secs(30);

/// A client for the unix socket at `path` (`unix://` already removed), keeping up to `idle`
/// connections open between calls.
pub(super) fn unix(path: &str, timeout_secs: u64, idle: usize) -> Result<Docker, BollardError> {
    // What bollard's own unix client checks first (its error explains a missing socket).
    if !Path::new(path).exists() {
        return Err(BollardError::SocketNotFoundError(path.to_owned()));
    }
    // hyperlocal's connector reads the socket's path from the URI's host, hex-encoded.
    let address = format!("unix://{}", hex::encode(path));
    pooled(hyperlocal::UnixConnector, &address, timeout_secs, idle)
}

/// A client for plain HTTP to `addr` (`tcp://host:port` or `http://host:port`), keeping up
/// to `idle` connections open between calls.
pub(super) fn http(addr: &str, timeout_secs: u64, idle: usize) -> Result<Docker, BollardError> {
    let hostport = addr.replacen("tcp://", "", 1).replacen("http://", "", 1);
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    pooled(connector, &format!("http://{hostport}"), timeout_secs, idle)
}

/// A client for TLS to `addr` (`tcp://host:port` or `https://host:port`) with `config`,
/// keeping up to `idle` connections open between calls.
pub(super) fn https(
    addr: &str,
    timeout_secs: u64,
    idle: usize,
    config: rustls::ClientConfig,
) -> Result<Docker, BollardError> {
    let hostport = addr.replacen("tcp://", "", 1).replacen("https://", "", 1);
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    connector.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnector::from((connector, config));
    pooled(
        connector,
        &format!("https://{hostport}"),
        timeout_secs,
        idle,
    )
}

fn pooled<C>(
    connector: C,
    address: &str,
    timeout_secs: u64,
    idle: usize,
) -> Result<Docker, BollardError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle.max(1))
        .pool_idle_timeout(IDLE)
        .build(connector);
    let client = Arc::new(client);
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let client = Arc::clone(&client);
            async move { client.request(request).await.map_err(BollardError::from) }
        },
        Some(address),
        timeout_secs,
        API_DEFAULT_VERSION,
    )
}
