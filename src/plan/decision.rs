//! A plan as data: one decision per image (an action and its reason), the order to show
//! them in, and the deletions in execution order.

use std::sync::Arc;

use serde::Serialize;

use super::eviction::EvictionOrder;
use super::reason::{Action, Reason};

/// The decision for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Index of the image in the inventory the plan was made from (and of this decision in
    /// [`Plan::decisions`]).
    pub image: usize,
    pub action: Action,
    /// The policy that selected the image, if any.
    pub policy: Option<Arc<str>>,
    pub reason: Reason,
}

/// One deletion, in execution order. Each planned image is deleted by its own call, never
/// with its parents in cascade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    /// Index into [`Plan::decisions`] (which is also the image's index in the inventory).
    pub decision: usize,
    /// 0 for images with no planned-for-deletion child; parents come after all their children.
    pub wave: usize,
    /// Estimated bytes this deletion frees: each layer counted once (see `graph::own_bytes`).
    pub reclaim_bytes: u64,
}

/// A complete plan: one decision per image, the order to show them in, and the deletions in
/// execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One decision per image, in inventory order: `decisions[i]` is about image `i`.
    pub decisions: Vec<Decision>,
    /// Plan order, as indexes into `decisions`: deletions first (children before parents,
    /// oldest first), then kept images, then untouched ones; ties by creation time and ID.
    pub order: Vec<usize>,
    pub deletions: Vec<Deletion>,
    pub reclaimable_bytes: u64,
    /// Whether the engine gave layer-sharing data (`SharedSize`). Without it the byte figures
    /// may count a base that parentless images share more than once.
    pub sharing_data: bool,
    /// Over `high`: every `disk_pressure` candidate in eviction order, for the pass to evict
    /// in measured waves (the first `estimated` are among `deletions`). `None` below `high`,
    /// without a measurement, or without `disk_pressure` policies.
    pub eviction: Option<EvictionOrder>,
}

impl Plan {
    /// The decisions in plan order.
    pub fn in_order(&self) -> impl Iterator<Item = &Decision> {
        self.order.iter().map(|&i| &self.decisions[i])
    }

    /// The decisions with a given action, in plan order.
    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &Decision> {
        self.in_order().filter(move |d| d.action == action)
    }
}
