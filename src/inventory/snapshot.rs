//! Everything one pass knows about the engine: the images, the containers and the build
//! cache records of one listing, and the check that the images' parent links do not loop.

use serde::Serialize;

use super::build_cache::{CacheRecord, build_in_progress};
use super::cycles::{cut_cycles, cycle_of};
use super::image::{Container, Image, ImageId};
use super::index::IdIndex;

/// Everything one pass knows about the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub images: Vec<Image>,
    pub containers: Vec<Container>,
    /// BuildKit's cache records; `None` when the engine has none or they could not be read.
    pub build_cache: Option<Vec<CacheRecord>>,
}

impl Inventory {
    /// True while BuildKit holds cache records for a running build (see
    /// [`build_in_progress`]); false when the engine has no build cache.
    #[must_use]
    pub fn build_in_progress(&self) -> bool {
        self.build_cache.as_deref().is_some_and(build_in_progress)
    }

    /// Fill in each image's `shared_size` from the engine's disk usage.
    pub fn apply_shared_sizes(&mut self, shared: &[(ImageId, u64)]) {
        if shared.is_empty() {
            return;
        }
        let by_id: std::collections::HashMap<ImageId, u64> = shared.iter().copied().collect();
        for image in &mut self.images {
            if let Some(&bytes) = by_id.get(&image.id) {
                image.shared_size = Some(bytes);
            }
        }
    }
}

impl Inventory {
    /// Reject a listing whose parent links loop: no real image store holds such a chain,
    /// and the planner's parent rules cannot be trusted on one (the module doc of
    /// `inventory::cycles` says why this rejects rather than repairs). Linear in the images.
    pub fn check_parents(&self) -> Result<(), ParentCycles> {
        let index = IdIndex::new(&self.images);
        let mut parent: Vec<Option<usize>> = self
            .images
            .iter()
            .map(|im| im.parent_id.and_then(|p| index.position(&p)))
            .collect();
        drop(index);
        let cuts = cut_cycles(&mut parent);
        if cuts.is_empty() {
            return Ok(());
        }
        let cycles = cuts
            .into_iter()
            .map(|cut| {
                cycle_of(&parent, cut)
                    .into_iter()
                    .map(|i| self.images[i].id)
                    .collect()
            })
            .collect();
        Err(ParentCycles { cycles })
    }
}

/// A listing whose parent links loop (each cycle's images in parent order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_cycles(.cycles))]
pub struct ParentCycles {
    pub cycles: Vec<Vec<ImageId>>,
}

/// `listed images whose parents form a cycle: 0a1b… → 2c3d… → 0a1b…; …`, at most five
/// cycles and eight images of each, with the way out.
fn render_cycles(cycles: &[Vec<ImageId>]) -> String {
    const CYCLES: usize = 5;
    const MEMBERS: usize = 8;
    let shown: Vec<String> = cycles
        .iter()
        .take(CYCLES)
        .map(|c| {
            let mut names: Vec<String> = c.iter().take(MEMBERS).map(ImageId::short).collect();
            if c.len() > MEMBERS {
                names.push(format!("… ({} images)", c.len()));
            }
            names.push(c.first().map(ImageId::short).unwrap_or_default());
            names.join(" → ")
        })
        .collect();
    let more = cycles.len().saturating_sub(CYCLES);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "listed images whose parents form a cycle: {}{more}; no real image store holds such a \
         chain, so the listing is not trusted and nothing was deleted (is a proxy or a \
         non-Docker engine answering on this socket?)",
        shown.join("; ")
    )
}
