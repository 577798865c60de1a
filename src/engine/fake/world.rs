//! The fake daemon's images and containers ([`World`]), and the calls a hook sees before
//! they are answered.

use crate::inventory::{Container, Image, ImageId};

/// One recorded `remove_image` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveCall {
    pub name: String,
    pub ok: bool,
}

/// A call the fake engine is about to answer, as a [`Hook`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    Info,
    ListImages,
    ListContainers,
    Inspect(&'a str),
    Remove(&'a str),
    DiskUsage,
    PruneBuildCache,
}

/// What the fake engine holds; a [`Hook`] may change it before any call is answered, as
/// other actors change a real host between stagesweep's calls.
#[derive(Debug, Default, Clone)]
pub struct World {
    pub images: Vec<Image>,
    pub containers: Vec<Container>,
}

impl World {
    /// Point `reference` at image `id`, moving it from any other image (`docker tag`).
    pub fn tag(&mut self, id: ImageId, reference: &str) {
        self.untag(reference);
        if let Some(image) = self.images.iter_mut().find(|i| i.id == id) {
            image.references.push(reference.to_owned());
            // As the daemon does: tagging (again, as a rebuild that hits the cache does)
            // moves the image's tag time on.
            let later = image
                .last_tagged
                .map(|t| t + chrono::Duration::seconds(1))
                .unwrap_or_default();
            image.last_tagged = Some(later.max(chrono::Utc::now()));
        }
    }

    /// Remove `reference` from whichever image holds it, deleting nothing.
    pub fn untag(&mut self, reference: &str) {
        for image in &mut self.images {
            image.references.retain(|r| r != reference);
        }
    }
}

/// Called with every call before it is answered (see [`FakeEngine::set_hook`]).
pub type Hook = Box<dyn FnMut(Call<'_>, &mut World) + Send>;
