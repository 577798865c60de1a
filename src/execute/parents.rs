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

/// No deletion: the image is not planned.
const NONE: u32 = u32::MAX;

/// The inventory by ID, its parent links, and the planned set.
pub(super) struct Chains<'i> {
    images: &'i [Image],
    /// Position in `images` of each image ID.
    position: HashMap<ImageId, u32>,
    /// For each image (by position), the index of the deletion that deletes it, or [`NONE`].
    deletion: Vec<u32>,
}

impl<'i> Chains<'i> {
    /// `planned` yields, in deletion order, the position in `images` of each deletion's image.
    pub fn new(images: &'i [Image], planned: impl Iterator<Item = usize>) -> Self {
        let mut position = HashMap::with_capacity(images.len());
        for (n, image) in images.iter().enumerate() {
            // Inventories never reach 4 billion images; clamp rather than wrap if one did.
            position.insert(image.id, u32::try_from(n).unwrap_or(NONE));
        }
        let mut deletion = vec![NONE; images.len()];
        for (k, n) in planned.enumerate() {
            if let Some(slot) = deletion.get_mut(n) {
                *slot = u32::try_from(k).unwrap_or(NONE);
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
        let k = *self.deletion.get(n)?;
        (k != NONE).then(|| usize::try_from(k).ok()).flatten()
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
