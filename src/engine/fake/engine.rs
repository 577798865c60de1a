//! The in-memory engine: its state, its builder and the knobs tests turn (failures,
//! answers, an unreachable switch, a hook, the clock, events).
//!
//! Follows the daemon (Docker 20.10, checked against a real one) where a pass can tell the
//! difference: untag vs delete, 404 for unknown names, the daemon's 409 messages for images
//! used by containers, referenced more than once (by ID) or with child images. Like the
//! daemon, a delete also reports a `Deleted` record for the image's layer (a `sha256:` ID that
//! is not an image): callers must not count records blindly. Adds failure injection, an
//! unreachable switch, a hook that changes the world before any call is answered (other
//! actors on a live host), a call log, the deleted images and a concurrency gauge.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::daemon::Rules;
use super::world::{Call, Hook, RemoveCall, World};
use crate::engine::{CachePrune, EngineError, EngineEvent, ImageStore, RemoveReport};
use crate::inventory::{CacheRecord, Container, Image, ImageId};

pub(super) struct HookSlot(Option<Hook>);

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(hook)"
        } else {
            "None"
        })
    }
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) world: World,
    pub(super) clock: Option<DateTime<Utc>>,
    /// How deletions are answered where engines differ (Docker 20.10's by default).
    pub(super) rules: Rules,
    pub(super) hook: HookSlot,
    pub(super) answers: HashMap<String, Result<RemoveReport, EngineError>>,
    /// `None`: the disk usage has no build cache section.
    pub(super) cache: Option<Vec<CacheRecord>>,
    /// `POST /build/prune` answers 404 (Podman).
    pub(super) no_prune_api: bool,
    pub(super) cache_calls: Vec<CachePrune>,
    pub(super) unreachable: bool,
    pub(super) calls: Vec<RemoveCall>,
    /// Images deleted by `remove_image` calls, in order.
    pub(super) deleted: Vec<ImageId>,
    pub(super) in_flight: usize,
    pub(super) max_in_flight: usize,
    /// Every event emitted, for replays.
    pub(super) events: Vec<EngineEvent>,
    /// Live subscribers.
    pub(super) live: Option<tokio::sync::broadcast::Sender<EngineEvent>>,
    /// What `/info` says about where the engine keeps its data.
    pub(super) root_dir: Option<std::path::PathBuf>,
    pub(super) image_store: ImageStore,
    pub(super) remote: Option<String>,
    /// Build cache records holding an image's layers: shared while the image exists, private
    /// once it is deleted (as BuildKit's records are).
    pub(super) holds_layers_of: Vec<(String, ImageId)>,
}

/// The in-memory engine. Cheap to share by reference across tasks.
#[derive(Debug)]
pub struct FakeEngine {
    pub(super) state: Mutex<State>,
    pub(super) delay: Duration,
    pub(super) data_usage_delay: Duration,
}

/// Builder for [`FakeEngine`].
#[derive(Debug, Default)]
pub struct FakeEngineBuilder {
    images: Vec<Image>,
    containers: Vec<Container>,
    cache: Option<Vec<CacheRecord>>,
    no_prune_api: bool,
    delay: Duration,
    data_usage_delay: Duration,
    rules: Rules,
    clock: Option<DateTime<Utc>>,
    root_dir: Option<std::path::PathBuf>,
    image_store: ImageStore,
    remote: Option<String>,
}

impl FakeEngineBuilder {
    /// The data root `/info` reports (`DockerRootDir`; default none).
    #[must_use]
    pub fn root_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.root_dir = Some(dir.into());
        self
    }
    /// Report the containerd image store in `/info` (default: a graph driver).
    #[must_use]
    pub fn containerd_store(mut self) -> Self {
        self.image_store = ImageStore::Containerd;
        self
    }
    /// Be reached over the network at `host` (default: a local socket).
    #[must_use]
    pub fn remote(mut self, host: &str) -> Self {
        self.remote = Some(host.to_owned());
        self
    }
    #[must_use]
    pub fn image(mut self, image: impl Into<Image>) -> Self {
        self.images.push(image.into());
        self
    }
    #[must_use]
    pub fn container(mut self, container: Container) -> Self {
        self.containers.push(container);
        self
    }
    /// A build cache record.
    #[must_use]
    pub fn cache_record(mut self, record: CacheRecord) -> Self {
        self.cache.get_or_insert_with(Vec::new).push(record);
        self
    }
    /// An empty build cache whose `POST /build/prune` answers 404, as Podman's.
    #[must_use]
    pub fn no_prune_api(mut self) -> Self {
        self.no_prune_api = true;
        self
    }
    /// How long each removal takes (default: one `yield_now`). Uses `tokio::time`, so paused
    /// test time works.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    /// How long the data usage (`/system/df`) takes to answer (default: at once), as on a
    /// busy host. Uses `tokio::time`, so paused test time works.
    #[must_use]
    pub fn slow_data_usage(mut self, delay: Duration) -> Self {
        self.data_usage_delay = delay;
        self
    }
    /// The engine's clock, as `/info` reports it and as it checks `unused-for` when it prunes
    /// build cache (default: none reported; the real clock for build cache).
    #[must_use]
    pub fn clock(mut self, now: DateTime<Utc>) -> Self {
        self.clock = Some(now);
        self
    }
    /// Behave like Podman (checked with 4.3): deleting an image also deletes its untagged
    /// parents left without children and unused, whatever `noprune` says.
    #[must_use]
    pub fn deleting_parents(mut self) -> Self {
        self.rules.deletes_parents = true;
        self
    }
    /// Behave like the containerd image store (and Podman): deleting an image that has
    /// children succeeds (the children keep their layers), where Docker with overlay2
    /// refuses with 409.
    #[must_use]
    pub fn deleting_images_with_children(mut self) -> Self {
        self.rules.children_refuse = false;
        self
    }
    #[must_use]
    pub fn build(self) -> FakeEngine {
        FakeEngine {
            state: Mutex::new(State {
                world: World {
                    images: self.images,
                    containers: self.containers,
                },
                rules: self.rules,
                clock: self.clock,
                hook: HookSlot(None),
                answers: HashMap::new(),
                cache: self.cache.or_else(|| Some(Vec::new())),
                no_prune_api: self.no_prune_api,
                cache_calls: Vec::new(),
                unreachable: false,
                calls: Vec::new(),
                deleted: Vec::new(),
                events: Vec::new(),
                live: None,
                in_flight: 0,
                max_in_flight: 0,
                root_dir: self.root_dir,
                image_store: self.image_store,
                remote: self.remote,
                holds_layers_of: Vec::new(),
            }),
            delay: self.delay,
            data_usage_delay: self.data_usage_delay,
        }
    }
}

/// Decrements the in-flight gauge even when the removal future is dropped.
pub(super) struct InFlight<'a>(pub(super) &'a FakeEngine);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

impl FakeEngine {
    #[must_use]
    pub fn builder() -> FakeEngineBuilder {
        FakeEngineBuilder::default()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("fake engine lock is only poisoned after a test already panicked")
    }

    /// Run `hook` before every call is answered, with the world it may change.
    pub fn set_hook(&self, hook: Hook) {
        self.lock().hook = HookSlot(Some(hook));
    }

    /// Make every removal of exactly `name` fail with `error` (until cleared).
    pub fn fail_removal(&self, name: &str, error: EngineError) {
        self.lock().answers.insert(name.to_owned(), Err(error));
    }

    /// Make every removal of exactly `name` answer `report` and change nothing, as an engine
    /// that untags without deleting would (until cleared).
    pub fn answer_removal(&self, name: &str, report: RemoveReport) {
        self.lock().answers.insert(name.to_owned(), Ok(report));
    }

    /// Forget injected failures and answers.
    pub fn clear_failures(&self) {
        self.lock().answers.clear();
    }

    /// Make every call answer `Unreachable` (or stop doing so).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    pub fn add_image(&self, image: impl Into<Image>) {
        self.lock().world.images.push(image.into());
    }

    pub fn add_container(&self, container: Container) {
        self.lock().world.containers.push(container);
    }

    /// Remove a container by ID, as `docker rm` would.
    pub fn remove_container(&self, id: &str) {
        self.lock().world.containers.retain(|c| c.id != id);
    }

    /// Point `reference` at image `id`, moving it from any other image (`docker tag`).
    pub fn tag(&self, id: ImageId, reference: &str) {
        self.lock().world.tag(id, reference);
    }

    /// Make an image vanish without any check (someone else deleted it).
    pub fn drop_image(&self, id: ImageId) {
        self.lock().world.images.retain(|i| i.id != id);
    }

    /// The images now held, in insertion order.
    pub fn images(&self) -> Vec<Image> {
        self.lock().world.images.clone()
    }

    /// The image with this ID, if still present.
    pub fn image(&self, id: ImageId) -> Option<Image> {
        self.lock()
            .world
            .images
            .iter()
            .find(|i| i.id == id)
            .cloned()
    }

    /// Every `remove_image` call, in call order (failed ones included).
    pub fn calls(&self) -> Vec<RemoveCall> {
        self.lock().calls.clone()
    }

    /// The names passed to `remove_image`, in call order.
    pub fn removed_names(&self) -> Vec<String> {
        self.lock().calls.iter().map(|c| c.name.clone()).collect()
    }

    /// The images that `remove_image` calls deleted, in order.
    pub fn deleted_ids(&self) -> Vec<ImageId> {
        self.lock().deleted.clone()
    }

    /// The build cache records now held.
    pub fn cache_records(&self) -> Vec<CacheRecord> {
        self.lock().cache.clone().unwrap_or_default()
    }

    /// Every `prune_build_cache` request, in call order.
    pub fn cache_calls(&self) -> Vec<CachePrune> {
        self.lock().cache_calls.clone()
    }

    /// Build cache record `record` holds layers of image `image`: it is `shared` while the
    /// image exists and private once a `remove_image` deleted it (BuildKit keeps the layers
    /// of an image it built).
    pub fn cache_holds_layers_of(&self, record: &str, image: ImageId) {
        let mut st = self.lock();
        if let Some(r) = st.cache.iter_mut().flatten().find(|r| r.id == record) {
            r.shared = true;
        }
        st.holds_layers_of.push((record.to_owned(), image));
    }

    /// Drop the build cache section from the disk usage (an engine without BuildKit).
    pub fn remove_build_cache(&self) {
        self.lock().cache = None;
    }

    /// The most removals that were in flight at once.
    pub fn max_concurrent_removals(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Emit an event: kept for replays (`since`) and sent to live subscribers.
    pub fn emit(&self, event: EngineEvent) {
        let mut st = self.lock();
        st.events.push(event.clone());
        if let Some(live) = &st.live {
            let _ = live.send(event); // no subscriber is fine
        }
    }

    /// End every live event stream (as a daemon shutdown does) and forget the buffer.
    pub fn restart_events(&self) {
        let mut st = self.lock();
        st.live = None;
        st.events.clear();
    }

    /// Run the hook for `call`, then fail when the engine is switched off.
    pub(super) fn begin(&self, call: Call<'_>) -> Result<MutexGuard<'_, State>, EngineError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some(hook) = st.hook.0.as_mut() {
            hook(call, &mut st.world);
        }
        let st = guard;
        if st.unreachable {
            return Err(EngineError::Unreachable {
                host: "fake://engine".to_owned(),
                cause: "connection refused".to_owned(),
                hint: "wrong DOCKER_HOST?".to_owned(),
            });
        }
        Ok(st)
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
