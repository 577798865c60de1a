//! The image graph: parent links resolved to indexes, and each image's own bytes.

use chrono::{DateTime, Utc};
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::par;
use crate::inventory::{Image, ImageId};

/// Images with parent links resolved to indexes (children are found by scanning `parent`).
pub(super) struct Graph<'a> {
    pub images: &'a [Image],
    index: FxHashMap<ImageId, usize>,
    pub parent: Vec<Option<usize>>,
    /// Bytes the image adds on top of its parent (its own layers).
    pub own_bytes: Vec<u64>,

    /// Image times (the later of `Created` and `LastTagTime`) as [`time_key`]s (compact, for
    /// sorting without touching the images).
    pub created: Vec<u128>,
}

/// Bits a [`time_key`] takes: 64 for the seconds, 31 for the nanoseconds (leap seconds
/// included).
pub const TIME_KEY_BITS: u32 = 95;

/// A time as an unsigned integer that orders like the time.
pub fn time_key(t: DateTime<Utc>) -> u128 {
    let secs = u128::from(t.timestamp().cast_unsigned() ^ (1 << 63));
    (secs << 31) | u128::from(t.timestamp_subsec_nanos())
}

impl<'a> Graph<'a> {
    pub fn new(images: &'a [Image], threads: usize) -> Self {
        let n = images.len();
        // One pass over the images for everything read in order (they are large and spread
        // out in memory; the compact copies are what later steps read at random).
        let mut index: FxHashMap<ImageId, usize> =
            FxHashMap::with_capacity_and_hasher(n, FxBuildHasher);
        let mut created = Vec::with_capacity(n);
        let mut size = Vec::with_capacity(n);
        for (i, im) in images.iter().enumerate() {
            index.insert(im.id, i);
            // Ranked by the later of Created and LastTagTime: a re-tagged image is new again.
            created.push(time_key(
                im.last_tagged.map_or(im.created, |t| t.max(im.created)),
            ));
            size.push(im.size);
        }
        let mut parent: Vec<Option<usize>> = vec![None; n];
        par::fill(&mut parent, threads, |i| {
            images[i].parent_id.and_then(|p| index.get(&p).copied())
        });
        // Every walk up a chain (in-use parents, parents of kept images, waves, cascades)
        // relies on chains ending. A pass rejects a cyclic listing before planning
        // (`Inventory::check_parents`); cutting here keeps `plan()` total on any input.
        crate::inventory::cut_cycles(&mut parent);
        let own_bytes = size
            .iter()
            .zip(&parent)
            .map(|(s, p)| s.saturating_sub(p.map_or(0, |p| size[p])))
            .collect();
        Self {
            images,
            index,
            parent,
            own_bytes,
            created,
        }
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn index_of(&self, id: ImageId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// How an image is named in reasons: its first reference (a tag before a digest),
    /// else its short ID.
    pub fn display(&self, i: usize) -> String {
        let im = &self.images[i];
        im.all_references()
            .next()
            .cloned()
            .unwrap_or_else(|| im.short_id())
    }
}
