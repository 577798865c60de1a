//! An in-memory [`crate::engine::Engine`] for fast tests (compiled for tests and with the
//! `test-util` feature only: it is not in the release binary).
//!
//! Follows the daemon (Docker 20.10, checked against a real one) where a pass can tell the
//! difference: untag vs delete, 404 for unknown names, the daemon's 409 messages for images
//! used by containers, referenced more than once (by ID) or with child images. Like the
//! daemon, a delete also reports a `Deleted` record for the image's layer (a `sha256:` ID that
//! is not an image): callers must not count records blindly. Adds failure injection, an
//! unreachable switch, a hook that changes the world before any call is answered (other
//! actors on a live host), a call log, the deleted images and a concurrency gauge.

mod build_cache;
mod builders;
mod calls;
mod daemon;
mod engine;
mod world;

pub use builders::{
    FAKE_ENGINE_ID, ImageBuilder, build_step, cache_record, container, fake_id, image,
};
pub use engine::{FakeEngine, FakeEngineBuilder};
pub use world::{Call, Hook, RemoveCall, World};
