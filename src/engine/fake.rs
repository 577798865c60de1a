//! An in-memory [`super::Engine`] for fast tests.
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

use super::{
    CachePrune, CachePruneReport, DiskUsage, Engine, EngineError, EngineEvent, EngineInfo,
    EventStream, ImageState, RemoveReport,
};
use crate::cache::CacheRecord;
use crate::inventory::{Container, Image, ImageId, Labels};

/// The ID the fake engine reports in [`EngineInfo`].
pub const FAKE_ENGINE_ID: &str = "FAKE:ENGINE:0001";

/// A full, deterministic `sha256:` ID made from a short seed (`fake_id("a")`).
#[must_use]
pub fn fake_id(seed: &str) -> ImageId {
    if seed.starts_with("sha256:")
        && let Ok(id) = seed.parse()
    {
        return id;
    }
    let mut bytes = [0u8; 32];
    for (salt, chunk) in (0u64..).zip(bytes.chunks_exact_mut(8)) {
        // FNV-1a, salted: 4 × 8 bytes.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_be_bytes());
    }
    ImageId::from_bytes(bytes)
}

/// Terse construction of an [`Image`]: `image("a").tag("app:1").label("stage", "builder")`.
#[derive(Debug, Clone)]
pub struct ImageBuilder(Image);

/// Start an image whose ID is [`fake_id`]`(seed)` (or `seed` itself when it is a `sha256:` ID).
/// Defaults: no parent, no reference, no label, created 2025-01-01T00:00:00Z, 1000 bytes.
#[must_use]
pub fn image(seed: &str) -> ImageBuilder {
    ImageBuilder(Image {
        id: fake_id(seed),
        parent_id: None,
        references: Vec::new(),
        digests: Vec::new(),
        labels: Labels::new(),
        created: DateTime::from_timestamp(1_735_689_600, 0).expect("constant timestamp is valid"),
        last_tagged: None,
        size: 1000,
        shared_size: None,
    })
}

impl ImageBuilder {
    #[must_use]
    pub fn tag(mut self, reference: &str) -> Self {
        self.0.references.push(reference.to_owned());
        self
    }
    #[must_use]
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0.labels.insert(key, value);
        self
    }
    /// Parent by seed (or full ID).
    #[must_use]
    pub fn parent(mut self, seed: &str) -> Self {
        self.0.parent_id = Some(fake_id(seed));
        self
    }
    #[must_use]
    pub fn created(mut self, at: DateTime<Utc>) -> Self {
        self.0.created = at;
        self
    }
    /// Created `age` before `now`.
    #[must_use]
    pub fn age(self, now: DateTime<Utc>, age: Duration) -> Self {
        let age = chrono::Duration::from_std(age).expect("test ages fit in chrono::Duration");
        self.created(now - age)
    }
    #[must_use]
    pub fn size(mut self, bytes: u64) -> Self {
        self.0.size = bytes;
        self
    }
    /// `SharedSize`, as the engine's disk usage reports it.
    #[must_use]
    pub fn shared(mut self, bytes: u64) -> Self {
        self.0.shared_size = Some(bytes);
        self
    }
    #[must_use]
    pub fn build(self) -> Image {
        self.0
    }
}

impl From<ImageBuilder> for Image {
    fn from(b: ImageBuilder) -> Self {
        b.0
    }
}

/// A container `id` (seed) created from image `image` (seed or full ID) in `state`, by
/// reference (`Image` is the seed, as `docker run app:1` would record it).
#[must_use]
pub fn container(id: &str, image: &str, state: &str) -> Container {
    Container {
        id: hex::encode(fake_id(id).as_bytes()),
        image_id: fake_id(image),
        image: image.to_owned(),
        state: state.to_owned(),
    }
}

/// A classic-builder step: container `id` (seed) created from the bare ID of image `image`
/// (seed or full ID) in `state`, as a `RUN` step of `DOCKER_BUILDKIT=0 docker build` is.
#[must_use]
pub fn build_step(id: &str, image: &str, state: &str) -> Container {
    let image_id = fake_id(image);
    Container {
        image: image_id.to_string(),
        ..container(id, image, state)
    }
}

/// One recorded `remove_image` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveCall {
    pub name: String,
    pub ok: bool,
}

/// A call the fake engine is about to answer, as a [`Hook`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    Info,
    ListImages,
    ListContainers,
    Inspect(&'a str),
    Remove(&'a str),
    DiskUsage,
    PruneBuildCache,
}

/// What the fake engine holds; a [`Hook`] may change it before any call is answered, as
/// other actors change a real host between stagesweep's calls.
#[derive(Debug, Default, Clone)]
pub struct World {
    pub images: Vec<Image>,
    pub containers: Vec<Container>,
}

impl World {
    /// Point `reference` at image `id`, moving it from any other image (`docker tag`).
    pub fn tag(&mut self, id: ImageId, reference: &str) {
        self.untag(reference);
        if let Some(image) = self.images.iter_mut().find(|i| i.id == id) {
            image.references.push(reference.to_owned());
        }
    }

    /// Remove `reference` from whichever image holds it, deleting nothing.
    pub fn untag(&mut self, reference: &str) {
        for image in &mut self.images {
            image.references.retain(|r| r != reference);
        }
    }
}

/// Called with every call before it is answered (see [`FakeEngine::set_hook`]).
pub type Hook = Box<dyn FnMut(Call<'_>, &mut World) + Send>;

struct HookSlot(Option<Hook>);

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
struct State {
    world: World,
    clock: Option<DateTime<Utc>>,
    /// Like Podman: deleting an image also deletes its untagged parents left without
    /// children, whatever `noprune` says.
    deletes_parents: bool,
    hook: HookSlot,
    answers: HashMap<String, Result<RemoveReport, EngineError>>,
    /// `None`: the disk usage has no build cache section.
    cache: Option<Vec<CacheRecord>>,
    /// `POST /build/prune` answers 404 (Podman).
    no_prune_api: bool,
    cache_calls: Vec<CachePrune>,
    unreachable: bool,
    calls: Vec<RemoveCall>,
    /// Images deleted by `remove_image` calls, in order.
    deleted: Vec<ImageId>,
    in_flight: usize,
    max_in_flight: usize,
    /// Every event emitted, for replays.
    events: Vec<EngineEvent>,
    /// Live subscribers.
    live: Option<tokio::sync::broadcast::Sender<EngineEvent>>,
}

/// The in-memory engine. Cheap to share by reference across tasks.
#[derive(Debug)]
pub struct FakeEngine {
    state: Mutex<State>,
    delay: Duration,
}

/// Builder for [`FakeEngine`].
#[derive(Debug, Default)]
pub struct FakeEngineBuilder {
    images: Vec<Image>,
    containers: Vec<Container>,
    cache: Option<Vec<CacheRecord>>,
    no_prune_api: bool,
    delay: Duration,
    deletes_parents: bool,
    clock: Option<DateTime<Utc>>,
}

impl FakeEngineBuilder {
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
        self.deletes_parents = true;
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
                deletes_parents: self.deletes_parents,
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
            }),
            delay: self.delay,
        }
    }
}

/// Decrements the in-flight gauge even when the removal future is dropped.
struct InFlight<'a>(&'a FakeEngine);

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

    fn lock(&self) -> MutexGuard<'_, State> {
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
    fn begin(&self, call: Call<'_>) -> Result<MutexGuard<'_, State>, EngineError> {
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

impl Engine for FakeEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.begin(Call::Info).map(drop)
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let clock = self.begin(Call::Info)?.clock;
        Ok(EngineInfo {
            id: FAKE_ENGINE_ID.to_owned(),
            kind: super::EngineKind::Docker,
            name: "fake".to_owned(),
            server_version: "0.0.0-fake".to_owned(),
            system_time: clock,
            root_dir: None,
        })
    }

    async fn inspect_image(&self, name: &str) -> Result<ImageState, EngineError> {
        let st = self.begin(Call::Inspect(name))?;
        let image = daemon::resolve(&st.world.images, name)?;
        Ok(ImageState {
            id: image.id,
            references: image.references.clone(),
            digests: image.digests.clone(),
            created: Some(image.created),
            last_tagged: image.last_tagged,
        })
    }

    /// Like the daemon's listing, without tag times (only inspect tells them).
    async fn list_images(&self) -> Result<Vec<Image>, EngineError> {
        let st = self.begin(Call::ListImages)?;
        let listed = st.world.images.iter().map(|i| Image {
            last_tagged: None,
            ..i.clone()
        });
        Ok(listed.collect())
    }

    async fn list_containers(&self) -> Result<Vec<Container>, EngineError> {
        Ok(self.begin(Call::ListContainers)?.world.containers.clone())
    }

    async fn remove_image(&self, name: &str) -> Result<RemoveReport, EngineError> {
        {
            let mut st = self.begin(Call::Remove(name))?;
            st.in_flight += 1;
            st.max_in_flight = st.max_in_flight.max(st.in_flight);
        }
        let guard = InFlight(self);
        if self.delay.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(self.delay).await;
        }
        let mut guard_state = self.lock();
        let st = &mut *guard_state;
        let before: Vec<ImageId> = st.world.images.iter().map(|i| i.id).collect();
        let result = match st.answers.get(name) {
            Some(answer) => answer.clone(),
            None if st.deletes_parents => daemon::remove_with_parents(&mut st.world, name),
            None => daemon::remove(&mut st.world, name),
        };
        let world = &st.world;
        let gone = before
            .into_iter()
            .filter(|id| !world.images.iter().any(|i| i.id == *id));
        let gone: Vec<ImageId> = gone.collect();
        st.deleted.extend(gone);
        st.calls.push(RemoveCall {
            name: name.to_owned(),
            ok: result.is_ok(),
        });
        drop(guard_state);
        drop(guard);
        result
    }

    fn deletes_parents(&self) -> bool {
        self.lock().deletes_parents
    }

    fn events(&self, since: Option<i64>, until: Option<i64>) -> EventStream {
        use futures_util::StreamExt as _;
        let mut st = self.lock();
        if st.unreachable {
            let e = EngineError::Unreachable {
                host: "fake://engine".to_owned(),
                cause: "connection refused".to_owned(),
                hint: "wrong DOCKER_HOST?".to_owned(),
            };
            return futures_util::stream::iter([Err(e)]).boxed();
        }
        let live = until.is_none().then(|| {
            st.live
                .get_or_insert_with(|| tokio::sync::broadcast::channel(1024).0)
                .subscribe()
        });
        // Like the daemon: without `since`, no replay.
        let replay: Vec<_> = st
            .events
            .iter()
            .filter(|e| since.is_some_and(|s| e.time_nano >= s))
            .filter(|e| until.is_none_or(|u| e.time_nano <= u))
            .cloned()
            .map(Ok)
            .collect();
        drop(st);
        let replay = futures_util::stream::iter(replay);
        match live {
            None => replay.boxed(),
            Some(rx) => {
                let live = futures_util::stream::unfold(rx, |mut rx| async move {
                    loop {
                        match rx.recv().await {
                            Ok(e) => return Some((Ok(e), rx)),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                });
                replay.chain(live).boxed()
            }
        }
    }

    async fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        let st = self.begin(Call::DiskUsage)?;
        Ok(DiskUsage {
            shared_sizes: (st.world.images.iter())
                .filter_map(|i| i.shared_size.map(|s| (i.id, s)))
                .collect(),
            build_cache: st.cache.clone(),
        })
    }

    async fn prune_build_cache(
        &self,
        request: &CachePrune,
    ) -> Result<CachePruneReport, EngineError> {
        tokio::task::yield_now().await;
        let mut st = self.begin(Call::PruneBuildCache)?;
        st.cache_calls.push(request.clone());
        if st.no_prune_api {
            return Err(EngineError::NotFound("page not found".to_owned()));
        }
        let now = st.clock.unwrap_or_else(Utc::now);
        let records = st.cache.get_or_insert_with(Vec::new);
        Ok(cache::prune(records, request, now))
    }

    fn describe(&self) -> String {
        "fake engine".to_owned()
    }
}

mod cache;
mod daemon;

#[cfg(test)]
mod tests;
