//! The narrow interface to a container engine, and its errors.
//!
//! `docker` holds the bollard implementation (the only place bollard types appear);
//! `fake` holds an in-memory engine for fast tests. Nothing here decides anything.

pub mod docker;
pub mod fake;

use std::future::Future;

use crate::inventory::{Container, Image};

/// What the daemon reported for one `DELETE /images/{name}` call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// References that were untagged.
    pub untagged: Vec<String>,
    /// Image IDs that were deleted (the target and any untagged parents deleted in cascade).
    pub deleted: Vec<String>,
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
    /// The call did not answer within the configured timeout.
    #[error("docker did not answer within {seconds}s: {what}")]
    Timeout { seconds: u64, what: String },
    /// Any other failure (non-2xx answer, malformed answer, …).
    #[error("{0}")]
    Other(String),
}

/// The few engine calls a pass needs.
pub trait Engine: Send + Sync {
    /// Check that the engine answers.
    fn ping(&self) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// All images, intermediate ones included (`all=true`).
    fn list_images(&self) -> impl Future<Output = Result<Vec<Image>, EngineError>> + Send;

    /// All containers, running or not (`all=true`).
    fn list_containers(&self) -> impl Future<Output = Result<Vec<Container>, EngineError>> + Send;

    /// `DELETE /images/{name}` without force. `name` is a `repo:tag` reference or an image ID.
    /// With `prune_parents` the daemon also deletes untagged parents left without children.
    fn remove_image(
        &self,
        name: &str,
        prune_parents: bool,
    ) -> impl Future<Output = Result<RemoveReport, EngineError>> + Send;

    /// A human description of where the engine is (for messages).
    fn describe(&self) -> String;
}
