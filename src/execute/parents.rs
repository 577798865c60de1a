//! Engines that delete an image's untagged parents along with it (Podman 4 ignores
//! `noprune`): before such an engine is asked to delete an image, each parent it would take
//! along must be planned for deletion too. Checked on the engine at that moment, since a
//! parent whose tag was removed after the plan would now go with its child.
//!
//! [`Chains`] is also the executor's one index of the inventory: image ID → position (an
//! [`IdIndex`]), which of them are planned, and which deletion deletes each.

use crate::engine::{Engine, EngineError};
use crate::inventory::{IdIndex, Image, ImageId};

/// The inventory by ID, its parent links, and the planned set.
pub(super) struct Chains<'i> {
    index: IdIndex<'i>,
    /// For each image (by position), the index of the deletion that deletes it.
    deletion: Vec<Option<u32>>,
}

impl<'i> Chains<'i> {
    /// `planned` yields, in deletion order, the position in `images` of each deletion's image.
    pub fn new(images: &'i [Image], planned: impl Iterator<Item = usize>) -> Self {
        let mut deletion = vec![None; images.len()];
        for (k, n) in planned.enumerate() {
            if let Some(slot) = deletion.get_mut(n) {
                *slot = u32::try_from(k).ok();
            }
        }
        Self {
            index: IdIndex::new(images),
            deletion,
        }
    }

    fn image(&self, id: ImageId) -> Option<(usize, &'i Image)> {
        self.index.image(&id)
    }

    /// True when the inventory has this image.
    pub fn knows(&self, id: ImageId) -> bool {
        self.index.position(&id).is_some()
    }

    /// The index of the deletion that deletes this image, if it is planned.
    pub fn deletion_of(&self, id: ImageId) -> Option<usize> {
        let (n, _) = self.image(id)?;
        usize::try_from((*self.deletion.get(n)?)?).ok()
    }

    pub fn is_planned(&self, id: ImageId) -> bool {
        self.deletion_of(id).is_some()
    }

    fn parent(&self, id: ImageId) -> Option<ImageId> {
        self.image(id)?.1.parent_id
    }

    /// The first parent of `id` that such an engine would delete along with it although the
    /// plan keeps it: untagged now, and not planned. The walk stops at a tagged parent (the
    /// engine stops there) or one that is gone. A parent the plan does not know is assumed
    /// to go, unless it is tagged.
    pub async fn unplanned_parent<E: Engine>(
        &self,
        engine: &E,
        id: ImageId,
    ) -> Result<Option<ImageId>, EngineError> {
        let mut next = self.parent(id);
        while let Some(p) = next {
            match engine.inspect_image(&p.to_string()).await {
                Err(EngineError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
                Ok(now) if !now.references.is_empty() => return Ok(None),
                Ok(_) if !self.is_planned(p) => return Ok(Some(p)),
                Ok(_) => next = self.parent(p),
            }
        }
        Ok(None)
    }
}

/// For each deletion, the deletions of its planned children (by index into the deletions),
/// in deletion order: one flat list cut by offsets, not a vector per parent.
pub(super) struct Children {
    /// `list[start[k]..start[k + 1]]` are the children of deletion `k`.
    start: Vec<usize>,
    list: Vec<usize>,
}

impl Children {
    /// The children of `n` deletions, from the deletion of each one's parent (if planned).
    pub fn new(n: usize, parent: impl Fn(usize) -> Option<usize>) -> Self {
        let parent: Vec<Option<usize>> = (0..n).map(parent).map(|p| p.filter(|&p| p < n)).collect();
        let mut start = vec![0; n + 1];
        for &p in parent.iter().flatten() {
            start[p + 1] += 1;
        }
        for k in 0..n {
            start[k + 1] += start[k];
        }
        let mut next = start.clone();
        let mut list = vec![0; start[n]];
        for (k, p) in parent.into_iter().enumerate() {
            if let Some(p) = p {
                list[next[p]] = k;
                next[p] += 1;
            }
        }
        Self { start, list }
    }

    /// The children of deletion `k`, in deletion order.
    pub fn of(&self, k: usize) -> &[usize] {
        self.start
            .get(k..k + 2)
            .map_or(&[][..], |s| &self.list[s[0]..s[1]])
    }
}

#[cfg(test)]
mod tests {
    use super::Children;

    #[test]
    fn children_come_in_deletion_order_under_their_parent() {
        // Deletions 0, 1 and 3 are children of 4; 2 of 5; 5 and 4 have no planned parent,
        // and 6 names a parent outside the plan.
        let parents = [Some(4), Some(4), Some(5), Some(4), None, None, Some(99)];
        let children = Children::new(parents.len(), |k| parents[k]);
        assert_eq!(children.of(4), [0, 1, 3]);
        assert_eq!(children.of(5), [2]);
        for k in [0, 1, 2, 3, 6, 7, 100] {
            assert!(children.of(k).is_empty(), "{k}");
        }
        assert!(Children::new(0, |_| None).of(0).is_empty());
    }
}
