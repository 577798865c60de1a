//! The image graph: parent links resolved to indexes, and each image's own bytes.

use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::inventory::Image;

/// Images with parent links resolved to indexes (children are found by scanning `parent`).
pub(super) struct Graph<'a> {
    pub images: &'a [Image],
    index: FxHashMap<&'a str, usize>,
    pub parent: Vec<Option<usize>>,
    /// Bytes the image adds on top of its parent (its own layers).
    pub own_bytes: Vec<u64>,
    /// Whether the image has a `repo:tag` (compact, for walks up the chains).
    pub tagged: Vec<bool>,
}

impl<'a> Graph<'a> {
    pub fn new(images: &'a [Image]) -> Self {
        let mut index: FxHashMap<&str, usize> =
            FxHashMap::with_capacity_and_hasher(images.len(), FxBuildHasher);
        index.extend(images.iter().enumerate().map(|(i, im)| (im.id.as_str(), i)));
        let parent: Vec<Option<usize>> = images
            .iter()
            .map(|im| im.parent_id.as_deref().and_then(|p| index.get(p).copied()))
            .collect();
        let own_bytes = images
            .iter()
            .zip(&parent)
            .map(|(im, p)| im.size.saturating_sub(p.map_or(0, |p| images[p].size)))
            .collect();
        let tagged = images.iter().map(|im| !im.references.is_empty()).collect();
        Self {
            images,
            index,
            parent,
            own_bytes,
            tagged,
        }
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// How an image is named in reasons: its first reference, else its short ID.
    pub fn display(&self, i: usize) -> String {
        let im = &self.images[i];
        im.references
            .first()
            .cloned()
            .unwrap_or_else(|| im.short_id().to_owned())
    }
}
