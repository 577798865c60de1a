//! Versioned requests to paths bollard 0.21.1 cannot reach, through bollard's own transport
//! (unix, tcp, TLS), timeout and error handling.
//!
//! bollard 0.21.1 sends every path without the `/v1.xx` prefix, so the daemon answers in its
//! own newest schema (its `df()` then reads all `None` from Docker 20.10), and it has no
//! public call for an arbitrary path or query (`keep-storage`). What it does have is a
//! request modifier that runs on every request it builds: a clone of the client whose
//! modifier replaces the path and query is pointed at the versioned request we build, and a
//! call whose method and answer fit carries it — `export_image` (GET, the body's bytes as
//! they arrive) and `prune_build` (POST, `BuildPruneResponse`, the same in every API version).

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::BuildPruneResponse;
use bollard::query_parameters::PruneBuildOptions;
use hyper::Uri;
use hyper::http::uri::PathAndQuery;

/// A request target such as `/v1.41/system/df?type=image`.
fn target(path_and_query: &str) -> PathAndQuery {
    path_and_query.parse().expect(
        "targets are built from constant paths and a form-urlencoded query, which always parse",
    )
}

/// A clone of `docker` (sharing its connection pool) whose requests all go to `target`.
fn pointed_at(docker: &Docker, target: PathAndQuery) -> Docker {
    docker.clone().with_request_modifier(move |mut request| {
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(target.clone());
        *request.uri_mut() = Uri::from_parts(parts).expect(
            "the request's scheme and authority came from a valid URI; only its path changes",
        );
        request
    })
}

/// `GET path_and_query`; the body's bytes as they arrive, exactly as sent (a non-2xx answer
/// is bollard's server error).
pub(super) fn get_stream(
    docker: &Docker,
    path_and_query: &str,
) -> impl futures_util::Stream<Item = Result<hyper::body::Bytes, BollardError>> + use<> {
    pointed_at(docker, target(path_and_query)).export_image("-")
}

/// `GET path_and_query`; the whole body, each piece appended to one buffer as it arrives
/// (collecting the pieces and then joining them would hold the answer twice: 2.5 MB for
/// the disk usage of 10 000 images). Non-2xx answers are bollard's server errors.
pub(super) async fn get_bytes(
    docker: &Docker,
    path_and_query: &str,
) -> Result<Vec<u8>, BollardError> {
    use futures_util::TryStreamExt as _;
    let mut answer = std::pin::pin!(get_stream(docker, path_and_query));
    let mut body = Vec::new();
    while let Some(piece) = answer.try_next().await? {
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

/// `POST path_and_query` to a `/build/prune` path; its answer.
pub(super) async fn post_build_prune(
    docker: &Docker,
    path_and_query: &str,
) -> Result<BuildPruneResponse, BollardError> {
    pointed_at(docker, target(path_and_query))
        .prune_build(None::<PruneBuildOptions>)
        .await
}

/// The negotiated Engine API version (`1.41` for Docker 20.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ApiVersion {
    pub major: usize,
    pub minor: usize,
}

impl ApiVersion {
    /// `1.minor`.
    pub const fn v1(minor: usize) -> Self {
        Self { major: 1, minor }
    }

    /// The version the client negotiated with the daemon.
    pub fn of(docker: &Docker) -> Self {
        let v = docker.client_version();
        Self {
            major: v.major_version,
            minor: v.minor_version,
        }
    }

    /// The path prefix: `/v1.41`.
    pub fn prefix(self) -> String {
        format!("/v{}.{}", self.major, self.minor)
    }
}
