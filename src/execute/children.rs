//! Engines that delete an image other images build on (the containerd image store and
//! Podman; Docker on a graph driver refuses with 409 "image has dependent child images"):
//! the plan keeps every parent of a kept image, but a child born after the inventory (a
//! classic build's step on a cached image, a `docker commit`) would not stop the engine.
//! So before each wave such an engine is listed once more and a planned image that now has
//! a child is skipped; and each listing (and one after the last wave) looks for a child
//! whose parent this pass deleted anyway — born in the window between a listing and a
//! deletion — and reports it loudly. On an engine that refuses such deletions, a wave of
//! untagged parents planned only because their children go (`parent_of_deleted`) is listed
//! once more all the same ([`children_if_needed`]): no policy selected them.

use std::collections::HashMap;

use tracing::warn;

use crate::engine::{Engine, EngineError};
use crate::inventory::ImageId;
use crate::plan::{Decision, Deletion, Reason};

/// The images that build on others now, by parent (one child each), from one listing.
pub(super) struct Offspring {
    child: HashMap<ImageId, ImageId>,
}

impl Offspring {
    /// List the engine's images now; `deleted` are the images this pass deleted so far: a
    /// child of one of them is reported (the engine deleted a parent with a child).
    pub async fn listed<E: Engine>(engine: &E, deleted: &[ImageId]) -> Result<Self, EngineError> {
        let images = engine.list_images().await?;
        let mut child = HashMap::new();
        for image in &images {
            if let Some(parent) = image.parent_id {
                child.entry(parent).or_insert(image.id);
            }
        }
        let offspring = Self { child };
        for id in deleted {
            if let Some(c) = offspring.child_of(*id) {
                tracing::error!(image = %id.short(), child = %c.short(),
                    "the engine deleted an image that another one builds on (it does not refuse \
                     parents with children, and the child appeared after the last check)");
            }
        }
        Ok(offspring)
    }

    /// An image that builds on `id`, if one does now.
    pub fn child_of(&self, id: ImageId) -> Option<ImageId> {
        self.child.get(&id).copied()
    }
}

/// Why a planned image is not deleted on such an engine: a child it gained since the
/// inventory, or children that could not be checked (`None`: delete it).
pub(super) fn reason_to_keep(
    offspring: &Result<Offspring, EngineError>,
    id: ImageId,
) -> Option<String> {
    match offspring {
        Ok(o) => o.child_of(id).map(|c| {
            format!(
                "image {} builds on it since the inventory (this engine would delete a parent \
                 with children)",
                c.short()
            )
        }),
        Err(e) => Some(format!(
            "could not re-check its children (this engine would delete a parent with \
             children): {e}"
        )),
    }
}

/// A wave with untagged parents that go with their deleted children lists the images again
/// first: an engine that deletes a parent with children (the containerd image store, Podman)
/// would not refuse one that gained a child since the plan, and such a parent was selected
/// by no policy — only because nothing else needed it. Parent ID → one child, as listed now
/// (`None` when that listing failed: those parents are then skipped). Other waves need none.
pub(super) async fn children_if_needed<E: Engine>(
    engine: &E,
    decisions: &[Decision],
    wave: &[Deletion],
) -> Option<HashMap<ImageId, ImageId>> {
    let parents = wave
        .iter()
        .any(|d| matches!(decisions[d.decision].reason, Reason::ParentOfDeleted { .. }));
    if !parents {
        return Some(HashMap::new());
    }
    match engine.list_images().await {
        Ok(listed) => Some(
            listed
                .into_iter()
                .filter_map(|i| Some((i.parent_id?, i.id)))
                .collect(),
        ),
        Err(e) => {
            warn!(error = %e, "could not re-check children; untagged parents are skipped in this wave");
            None
        }
    }
}
