//! The engine's state as plain values: images and containers, as one pass sees them.
//!
//! Owns the domain types that the planner reads. Knows nothing about bollard or I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One image as listed by the engine (intermediate images included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// Full image ID, `sha256:<hex>`.
    pub id: String,
    /// ID of the parent image (classic builder chains), when the engine knows one.
    pub parent_id: Option<String>,
    /// `repo:tag` references; empty for untagged images (`<none>:<none>` is filtered out).
    pub references: Vec<String>,
    /// Image labels (`config.Labels`).
    pub labels: BTreeMap<String, String>,
    /// Creation time reported by the engine.
    pub created: DateTime<Utc>,
    /// Size in bytes as reported by the engine (includes parent layers).
    pub size: u64,
}

impl Image {
    /// True when the image has no `repo:tag` reference.
    #[must_use]
    pub fn is_dangling(&self) -> bool {
        self.references.is_empty()
    }

    /// The first 12 hex digits of the ID, as `docker images` shows it.
    #[must_use]
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }
}

/// One container (running or not) and the image it was created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    /// Full container ID.
    pub id: String,
    /// Full ID of the image the container uses (`ImageID`, not what the user typed).
    pub image_id: String,
    /// Engine state: `running`, `exited`, `created`, …
    pub state: String,
}

/// Everything one pass knows about the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub images: Vec<Image>,
    pub containers: Vec<Container>,
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
