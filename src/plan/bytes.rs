//! Each image's own bytes, as the planner counts them (every layer once, for the image that
//! added it: see `graph::own_bytes`), for reports that attribute the space (`du`).

use super::graph::Graph;
use super::par;
use crate::inventory::Image;

/// The bytes each image holds counted once, indexed like `images`: what deleting it alone
/// would free when nothing else holds its layers. Layers that images without a common
/// parent share are counted for none of them.
#[must_use]
pub fn own_bytes(images: &[Image]) -> Vec<u64> {
    Graph::new(images, par::threads_for(images.len())).own_bytes
}
