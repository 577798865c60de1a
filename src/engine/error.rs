//! Errors from the engine, classified by what the caller should do about them.

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
