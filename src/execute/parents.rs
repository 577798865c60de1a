//! Engines that delete an image's untagged parents along with it (Podman 4 ignores
//! `noprune`): before such an engine is asked to delete an image, each parent it would take
//! along must be planned for deletion too. Checked on the engine at that moment, since a
//! parent whose tag was removed after the plan would now go with its child.

use std::collections::{HashMap, HashSet};

use crate::engine::{Engine, EngineError};
use crate::inventory::{Image, ImageId};

/// Parent links of the images the executor knows, and the planned set.
pub(super) struct Chains {
    parent: HashMap<ImageId, ImageId>,
    planned: HashSet<ImageId>,
}

impl Chains {
    pub fn new(images: &[Image], planned: HashSet<ImageId>) -> Self {
        let parent = (images.iter())
            .filter_map(|i| Some((i.id, i.parent_id?)))
            .collect();
        Self { parent, planned }
    }

    pub fn is_planned(&self, id: ImageId) -> bool {
        self.planned.contains(&id)
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
        let mut next = self.parent.get(&id).copied();
        while let Some(p) = next {
            match engine.inspect_image(&p.to_string()).await {
                Err(EngineError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
                Ok(now) if !now.references.is_empty() => return Ok(None),
                Ok(_) if !self.planned.contains(&p) => return Ok(Some(p)),
                Ok(_) => next = self.parent.get(&p).copied(),
            }
        }
        Ok(None)
    }
}
