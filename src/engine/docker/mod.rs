//! The bollard implementation of [`crate::engine::Engine`]: the only place bollard types
//! and the Engine API's HTTP appear.
//!
//! `connect` makes the client (host, TLS, API version negotiation) and bounds every call,
//! `pool` the one keep-alive connection pool all its calls share;
//! `calls` implements the trait; `convert` maps bollard's models to plain values and
//! `classify` its errors to [`crate::engine::EngineError`] (`transport`: connection-level
//! failures); `listing`, `df`, `build_cache` and `events` read and send what bollard models
//! badly, through `raw` requests on the negotiated API version (`protocol`: unreadable
//! answers; `retry`: the answers worth a second try). Which engine to talk to is `context`'s (config, `DOCKER_HOST`, the docker
//! CLI's contexts); TLS is `tls`'s; what is particular to Podman, `podman`'s. Decides
//! nothing.

mod build_cache;
mod calls;
mod classify;
mod connect;
pub mod context;
mod convert;
mod df;
mod events;
mod listing;
mod podman;
mod pool;
mod protocol;
mod raw;
mod retry;
mod tls;
mod transport;

pub use connect::{DockerEngine, connect, connect_to, connect_with};
pub use context::{ContextError, DEFAULT_HOST, DEFAULT_TLS_HOST, Endpoint};
pub use tls::TlsSettings;
