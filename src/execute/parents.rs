//! Engines that delete an image's untagged parents along with it (Podman 4 ignores
//! `noprune`): before such an engine is asked to delete an image, each parent it would take
//! along must be planned for deletion too. Checked on the engine at that moment, since a
//! parent whose tag was removed after the plan would now go with its child.
//!
//! [`Chains`] is also the executor's one index of the inventory: image ID → position, which
//! of them are planned, and which deletion deletes each. One map for all of these keeps a
//! large first pass small (one entry per image, not four maps of IDs).

use std::collections::HashMap;

use crate::engine::{Engine, EngineError};
use crate::inventory::{Image, ImageId};

/// The inventory by ID, its parent links, and the planned set.
pub(super) struct Chains<'i> {
    images: &'i [Image],
    /// Position in `images` of each image ID (`u32`: a smaller entry in a map of every image).
    position: HashMap<ImageId, u32>,
    /// For each image (by position), the index of the deletion that deletes it.
    deletion: Vec<Option<u32>>,
}

impl<'i> Chains<'i> {
    /// `planned` yields, in deletion order, the position in `images` of each deletion's image.
    pub fn new(images: &'i [Image], planned: impl Iterator<Item = usize>) -> Self {
        // Inventories never reach 4 billion images; one that did would lose the images past
        // that (unknown to the index: never taken for planned), not wrap onto others.
        let position = (images.iter().enumerate())
            .filter_map(|(n, image)| Some((image.id, u32::try_from(n).ok()?)))
            .collect();
        let mut deletion = vec![None; images.len()];
        for (k, n) in planned.enumerate() {
            if let Some(slot) = deletion.get_mut(n) {
                *slot = u32::try_from(k).ok();
            }
        }
        Self {
            images,
            position,
            deletion,
        }
    }

    fn image(&self, id: ImageId) -> Option<(usize, &'i Image)> {
        let n = usize::try_from(*self.position.get(&id)?).ok()?;
        Some((n, self.images.get(n)?))
    }

    /// True when the inventory has this image.
    pub fn knows(&self, id: ImageId) -> bool {
        self.position.contains_key(&id)
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
