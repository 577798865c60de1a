//! Images and containers as plain values: the image ID, one listed image, one container,
//! and what makes an image time real.
//!
//! Knows nothing about bollard, I/O or the configuration.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::labels::Labels;

/// An image ID: the SHA-256 digest of the image's config, held as its 32 bytes.
///
/// Compact and `Copy`, so that the planner hashes and compares IDs without touching the heap.
/// Parsed from `sha256:<64 hex digits>` (or the 64 digits alone); displayed and serialized in
/// the `sha256:` form the engine uses. Orders like the lowercase hex string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageId([u8; 32]);

/// A string the engine gave as an image ID that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an image ID (expected sha256:<64 hex digits>): {0:?}")]
pub struct InvalidImageId(pub String);

impl ImageId {
    /// The ID from its 32 digest bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 digest bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits, as `docker images` shows them.
    #[must_use]
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl FromStr for ImageId {
    type Err = InvalidImageId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("sha256:").unwrap_or(s);
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| InvalidImageId(s.to_owned()))?;
        Ok(Self(bytes))
    }
}

impl Hash for ImageId {
    /// The digest is already uniformly distributed: its first 8 bytes are hash enough
    /// (equality still compares all 32).
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str("sha256:")?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for ImageId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageId {
    /// From the `sha256:<hex>` form (or the bare digits), without allocating.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ImageId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an image ID (sha256:<64 hex digits>)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ImageId, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl PartialEq<str> for ImageId {
    /// True when `other` parses to this ID (`sha256:` prefix optional).
    fn eq(&self, other: &str) -> bool {
        other.parse::<ImageId>().is_ok_and(|id| id == *self)
    }
}

impl PartialEq<String> for ImageId {
    fn eq(&self, other: &String) -> bool {
        *self == *other.as_str()
    }
}

/// One image as listed by the engine (intermediate images included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// Image ID.
    pub id: ImageId,
    /// ID of the parent image (classic builder chains), when the engine knows one.
    pub parent_id: Option<ImageId>,
    /// `repo:tag` references; empty for untagged images (`<none>:<none>` is filtered out).
    pub references: Vec<String>,
    /// `repo@sha256:…` references (`RepoDigests`; `<none>@<none>` is filtered out).
    pub digests: Vec<String>,
    /// Image labels (`config.Labels`).
    pub labels: Labels,
    /// Creation time reported by the engine.
    pub created: DateTime<Utc>,
    /// When the image was last tagged on this engine (`Metadata.LastTagTime` from image
    /// inspect), where known. Not part of the listing: filled in for deletion candidates.
    pub last_tagged: Option<DateTime<Utc>>,
    /// Size in bytes as reported by the engine (includes parent layers).
    pub size: u64,
    /// Bytes of this image's layers that other images also hold (`SharedSize` from the
    /// engine's disk usage); `None` when the engine gave no sharing data for it.
    pub shared_size: Option<u64>,
}

impl Image {
    /// True when the image has no reference at all: neither a `repo:tag` nor a
    /// `repo@sha256:…` digest (an image known only by digest, e.g. pulled by digest, is not
    /// dangling).
    #[must_use]
    pub fn is_dangling(&self) -> bool {
        self.references.is_empty() && self.digests.is_empty()
    }

    /// Every reference: the `repo:tag` ones, then the `repo@sha256:…` digests.
    pub fn all_references(&self) -> impl Iterator<Item = &String> {
        self.references.iter().chain(&self.digests)
    }

    /// The first 12 hex digits of the ID, as `docker images` shows it.
    #[must_use]
    pub fn short_id(&self) -> String {
        self.id.short()
    }
}

/// One container (running or not) and the image it was created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    /// Full container ID.
    pub id: String,
    /// ID of the image the container uses (`ImageID`, not what the user typed).
    pub image_id: ImageId,
    /// The image as the container was created with (`Image`): a reference such as
    /// `app:1`, or a bare `sha256:…` ID, as the classic builder's `RUN` steps use.
    pub image: String,
    /// Engine state: `running`, `exited`, `created`, …
    pub state: String,
}

/// Times at or before this are placeholders, not real times (0, 1970, the epoch that
/// reproducible builds stamp): such a `Created` says nothing about an image's age.
pub const EARLIEST_REAL_TIME: DateTime<Utc> =
    DateTime::from_timestamp(315_532_800, 0).expect("1980-01-01T00:00:00Z is a valid timestamp");

/// How far in the future (the engine's clock ahead of ours) a time may be and still count.
pub const FUTURE_TOLERANCE: chrono::Duration = chrono::Duration::seconds(60);

/// Whether an image time (`Created`, `LastTagTime`) is a real time at `now`: after
/// 1980-01-01 and at most a minute ahead (reproducible builds stamp 1970; a skewed clock
/// stamps the future).
#[must_use]
pub fn is_real_time(t: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    t > EARLIEST_REAL_TIME && t <= now + FUTURE_TOLERANCE
}

/// The first 12 hex digits of an image or container ID, with any `sha256:` prefix removed.
#[must_use]
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// True for the placeholders Docker 20.10 reports for untagged images
/// (`<none>:<none>`, `<none>@<none>`).
#[must_use]
pub fn is_placeholder_reference(reference: &str) -> bool {
    reference.starts_with("<none>")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn image_id_round_trips_through_its_sha256_form() {
        let id: ImageId = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(id.to_string(), format!("sha256:{HEX}"));
        assert_eq!(format!("{id:?}"), format!("sha256:{HEX}"));
        assert_eq!(id.short(), "0123456789ab");
        assert_eq!(HEX.parse::<ImageId>().unwrap(), id, "bare digits parse too");
        assert_eq!(HEX.to_uppercase().parse::<ImageId>().unwrap(), id);
        assert!(id == *format!("sha256:{HEX}").as_str());
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"sha256:{HEX}\"")
        );
    }

    #[test]
    fn image_id_rejects_what_is_not_a_sha256_digest() {
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            &format!("sha256:{HEX}0"),
            &format!("sha512:{HEX}"),
            &HEX.replace('a', "g"),
        ] {
            let err = bad.parse::<ImageId>().unwrap_err();
            assert_eq!(err, InvalidImageId(bad.to_owned()));
            assert!(
                err.to_string().contains("expected sha256:<64 hex digits>"),
                "{err}"
            );
        }
    }

    #[test]
    fn image_ids_order_like_their_hex() {
        let a: ImageId = format!("{:0>64}", "9").parse().unwrap();
        let b: ImageId = format!("{:0>64}", "a0").parse().unwrap();
        assert!(a < b);
        assert!(a.to_string().as_str() < b.to_string().as_str());
    }
}
