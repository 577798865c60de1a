//! The narrow interface to a container engine: the few calls a pass needs.

use std::future::Future;

use super::error::EngineError;
use super::values::{
    CachePrune, CachePruneReport, DataUsage, EngineInfo, EventStream, ImageState, RemoveReport,
};
use crate::inventory::{Container, Image};

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

    /// True when the engine refuses (409) to delete an image that other images build on
    /// (Docker on a graph driver). The containerd image store and Podman delete such a
    /// parent: the executor must check for children born since the inventory first.
    fn refuses_parents_with_children(&self) -> bool;

    /// Container and image events (`type=container`, `type=image`: never unfiltered, since
    /// Podman's `system` events end the stream). `since`/`until` are `timeNano` values:
    /// events the engine still buffers from `since` on are replayed first; without `until`
    /// the stream then goes on live.
    fn events(&self, since: Option<i64>, until: Option<i64>) -> EventStream;

    /// Data usage (`GET /system/df` on the negotiated API version): layer sharing per image
    /// and the build cache records.
    fn data_usage(&self) -> impl Future<Output = Result<DataUsage, EngineError>> + Send;

    /// Delete exactly the records `request` names, when its checks still hold
    /// (`POST /build/prune`), never an in-use one, children before parents within the call.
    /// An engine without a build cache API answers [`EngineError::NotFound`].
    fn prune_build_cache(
        &self,
        request: &CachePrune,
    ) -> impl Future<Output = Result<CachePruneReport, EngineError>> + Send;

    /// A human description of where the engine is (for messages).
    fn describe(&self) -> String;

    /// True when the engine is reached over the network (`tcp://`, `https://`): a
    /// connection can then go half-open and silent without ending.
    fn is_remote(&self) -> bool {
        false
    }
}
