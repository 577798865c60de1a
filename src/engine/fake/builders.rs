//! Test values made short: deterministic image IDs from seeds, an image builder, containers
//! and classic build steps.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::inventory::{CacheRecord, CacheType, Container, Image, ImageId, Labels};

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

/// A `regular` build cache record `id` of `size` bytes, used once, private, not in use, with
/// no times (change fields with `CacheRecord { shared: true, ..cache_record("a", 5) }`).
#[must_use]
pub fn cache_record(id: &str, size: u64) -> CacheRecord {
    CacheRecord {
        id: id.to_owned(),
        parents: Vec::new(),
        kind: CacheType::Regular,
        description: String::new(),
        size,
        created: None,
        last_used: None,
        usage_count: 1,
        shared: false,
        in_use: false,
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
