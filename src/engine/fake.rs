//! An in-memory [`super::Engine`] for fast tests.
//!
//! Follows the daemon (Docker 20.10, checked against a real one) where a pass can tell the
//! difference: untag vs delete, 404 for unknown names, the daemon's 409 messages for images
//! used by containers, referenced more than once (by ID) or with child images, and the
//! `prune_parents` cascade. Like the daemon, a delete also reports a `Deleted` record for the
//! image's layer (a `sha256:` ID that is not an image): callers must not count records blindly.
//! Adds failure injection, an unreachable switch, a call log and a concurrency gauge.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, EngineInfo, ImageState, RemoveReport};
use crate::inventory::{Container, Image, ImageId};

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
        labels: BTreeMap::new(),
        created: DateTime::from_timestamp(1_735_689_600, 0).expect("constant timestamp is valid"),
        last_tagged: None,
        size: 1000,
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
        self.0.labels.insert(key.to_owned(), value.to_owned());
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

/// A container `id` (seed) created from image `image` (seed or full ID) in `state`.
#[must_use]
pub fn container(id: &str, image: &str, state: &str) -> Container {
    Container {
        id: hex::encode(fake_id(id).as_bytes()),
        image_id: fake_id(image),
        state: state.to_owned(),
    }
}

/// One recorded `remove_image` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveCall {
    pub name: String,
    pub prune_parents: bool,
    pub ok: bool,
}

#[derive(Debug, Default)]
struct State {
    images: Vec<Image>,
    containers: Vec<Container>,
    failures: HashMap<String, EngineError>,
    unreachable: bool,
    calls: Vec<RemoveCall>,
    in_flight: usize,
    max_in_flight: usize,
}

/// The in-memory engine. Cheap to share by reference across tasks.
#[derive(Debug, Default)]
pub struct FakeEngine {
    state: Mutex<State>,
    delay: Duration,
}

/// Builder for [`FakeEngine`].
#[derive(Debug, Default)]
pub struct FakeEngineBuilder {
    images: Vec<Image>,
    containers: Vec<Container>,
    delay: Duration,
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
    /// How long each removal takes (default: one `yield_now`). Uses `tokio::time`, so paused
    /// test time works.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    #[must_use]
    pub fn build(self) -> FakeEngine {
        FakeEngine {
            state: Mutex::new(State {
                images: self.images,
                containers: self.containers,
                ..State::default()
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

    /// Make every removal of exactly `name` fail with `error` (until cleared).
    pub fn fail_removal(&self, name: &str, error: EngineError) {
        self.lock().failures.insert(name.to_owned(), error);
    }

    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Make every call answer `Unreachable` (or stop doing so).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    pub fn add_image(&self, image: impl Into<Image>) {
        self.lock().images.push(image.into());
    }

    pub fn add_container(&self, container: Container) {
        self.lock().containers.push(container);
    }

    /// Remove a container by ID, as `docker rm` would.
    pub fn remove_container(&self, id: &str) {
        self.lock().containers.retain(|c| c.id != id);
    }

    /// Make an image vanish without any check (someone else deleted it).
    pub fn drop_image(&self, id: ImageId) {
        self.lock().images.retain(|i| i.id != id);
    }

    /// The images now held, in insertion order.
    pub fn images(&self) -> Vec<Image> {
        self.lock().images.clone()
    }

    /// The image with this ID, if still present.
    pub fn image(&self, id: ImageId) -> Option<Image> {
        self.lock().images.iter().find(|i| i.id == id).cloned()
    }

    /// Every `remove_image` call, in call order (failed ones included).
    pub fn calls(&self) -> Vec<RemoveCall> {
        self.lock().calls.clone()
    }

    /// The names passed to `remove_image`, in call order.
    pub fn removed_names(&self) -> Vec<String> {
        self.lock().calls.iter().map(|c| c.name.clone()).collect()
    }

    /// The most removals that were in flight at once.
    pub fn max_concurrent_removals(&self) -> usize {
        self.lock().max_in_flight
    }

    fn check_reachable(&self) -> Result<(), EngineError> {
        if self.lock().unreachable {
            return Err(EngineError::Unreachable {
                host: "fake://engine".to_owned(),
                cause: "connection refused".to_owned(),
                hint: "wrong DOCKER_HOST?".to_owned(),
            });
        }
        Ok(())
    }
}

impl Engine for FakeEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.check_reachable()
    }

    async fn list_images(&self) -> Result<Vec<Image>, EngineError> {
        self.check_reachable()?;
        Ok(self.images())
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        self.check_reachable()?;
        Ok(EngineInfo {
            id: FAKE_ENGINE_ID.to_owned(),
            kind: super::EngineKind::Docker,
            name: "fake".to_owned(),
            server_version: "0.0.0-fake".to_owned(),
            system_time: None,
            root_dir: None,
        })
    }

    async fn inspect_image(&self, name: &str) -> Result<ImageState, EngineError> {
        self.check_reachable()?;
        let st = self.lock();
        let image = daemon::resolve(&st.images, name)?;
        Ok(ImageState {
            id: image.id,
            references: image.references.clone(),
            digests: image.digests.clone(),
            created: Some(image.created),
            last_tagged: image.last_tagged,
        })
    }

    async fn list_containers(&self) -> Result<Vec<Container>, EngineError> {
        self.check_reachable()?;
        Ok(self.lock().containers.clone())
    }

    async fn remove_image(
        &self,
        name: &str,
        prune_parents: bool,
    ) -> Result<RemoveReport, EngineError> {
        self.check_reachable()?;
        {
            let mut st = self.lock();
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
        let result = match st.failures.get(name) {
            Some(err) => Err(err.clone()),
            None => daemon::remove(&mut st.images, &st.containers, name, prune_parents),
        };
        st.calls.push(RemoveCall {
            name: name.to_owned(),
            prune_parents,
            ok: result.is_ok(),
        });
        drop(guard_state);
        drop(guard);
        result
    }

    fn describe(&self) -> String {
        "fake engine".to_owned()
    }
}

mod daemon;

#[cfg(test)]
mod tests;
