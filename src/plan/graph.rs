//! The image graph: parent links resolved to indexes, and each image's own bytes.

use chrono::{DateTime, Utc};

use super::par;
use crate::inventory::{IdIndex, Image, ImageId};

/// Images with parent links resolved to indexes (children are found by scanning `parent`).
pub(super) struct Graph<'a> {
    pub images: &'a [Image],
    index: IdIndex<'a>,
    pub parent: Vec<Option<usize>>,
    /// Bytes deleting the image frees (see [`own_bytes`]).
    pub own_bytes: Vec<u64>,
    /// Bytes of the image's layers that images outside its parent chain also hold, where the
    /// engine said so (0 otherwise): counted once per group by size budgets.
    pub shared_bytes: Vec<u64>,
    /// Whether any image came with sharing data from the engine.
    pub sharing_data: bool,
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

/// Bytes each image frees when deleted, counting every layer once, and the bytes of its
/// layers that images outside its chain also hold.
///
/// `chain = Size − parent's Size` (the whole `Size` without a parent in the inventory) is
/// what an image adds on top of its parent: exact for classic-builder chains, where a child
/// holds every layer of its parent. Images without a parent (BuildKit builds, pulled and
/// loaded images) that share a base would each count the base again, so where the engine
/// gives `SharedSize` (the bytes of the image's layers that other images also hold) an
/// image that no other image builds on frees only `Size − SharedSize`, and never more than
/// `chain`: `own = min(chain, Size − SharedSize)`. An image with children keeps `chain`: its
/// layers are shared with its own children, which the chain already accounts for. Shared
/// layers are thereby counted for none of the images that share them (deleting one of them
/// frees none of those bytes); `shared = chain − own` lets a size budget count them once.
/// Without sharing data every image keeps `chain`, and the figure is an estimate that may
/// count a shared base more than once.
fn own_bytes(
    size: &[u64],
    shared_size: &[Option<u64>],
    parent: &[Option<usize>],
) -> (Vec<u64>, Vec<u64>) {
    let mut has_child = vec![false; size.len()];
    for p in parent.iter().flatten() {
        has_child[*p] = true;
    }
    (0..size.len())
        .map(|i| {
            let chain = size[i].saturating_sub(parent[i].map_or(0, |p| size[p]));
            let own = match shared_size[i] {
                Some(shared) if !has_child[i] => chain.min(size[i].saturating_sub(shared)),
                _ => chain,
            };
            (own, chain - own)
        })
        .unzip()
}

impl<'a> Graph<'a> {
    pub fn new(images: &'a [Image], threads: usize) -> Self {
        let n = images.len();
        // One pass over the images for everything read in order (they are large and spread
        // out in memory; the compact copies are what later steps read at random).
        let index = IdIndex::new(images);
        let mut created = Vec::with_capacity(n);
        let mut size = Vec::with_capacity(n);
        let mut shared_size = Vec::with_capacity(n);
        for im in images {
            // Ranked by the later of Created and LastTagTime: a re-tagged image is new again.
            created.push(time_key(
                im.last_tagged.map_or(im.created, |t| t.max(im.created)),
            ));
            size.push(im.size);
            shared_size.push(im.shared_size);
        }
        let mut parent: Vec<Option<usize>> = vec![None; n];
        par::fill(&mut parent, threads, |i| {
            images[i].parent_id.and_then(|p| index.position(&p))
        });
        // Every walk up a chain (in-use parents, parents of kept images, waves, cascades)
        // relies on chains ending. A pass rejects a cyclic listing before planning
        // (`Inventory::check_parents`); cutting here keeps `plan()` total on any input.
        crate::inventory::cut_cycles(&mut parent);
        let (own_bytes, shared_bytes) = own_bytes(&size, &shared_size, &parent);
        Self {
            images,
            index,
            parent,
            own_bytes,
            shared_bytes,
            sharing_data: shared_size.iter().any(Option::is_some),
            created,
        }
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn index_of(&self, id: ImageId) -> Option<usize> {
        self.index.position(&id)
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
