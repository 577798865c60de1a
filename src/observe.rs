//! What a pass knows besides the inventory, gathered before planning: the history
//! (reconciled with the listing just made) and the disk measurement. The planner gets them
//! as plain values ([`Usage`]); after the deletions, the history forgets what was deleted.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::config::{Config, Measure, When};
use crate::disk;
use crate::engine::EngineInfo;
use crate::execute::{DeletionResult, Outcome};
use crate::history::History;
use crate::history::reconcile::reconcile;
use crate::history::worker::lock;
use crate::inventory::Inventory;
use crate::plan::{Plan, Usage};

/// Whether the configuration needs the disk measured at every pass.
#[must_use]
pub fn needs_disk(config: &Config) -> bool {
    config.disk.is_some() && config.policies.iter().any(|p| p.when == When::DiskPressure)
}

/// Reconcile `history` (when given) with the inventory and measure the disk (when a policy
/// needs it), with what `/info` said.
pub fn gather(
    config: &Config,
    info: &EngineInfo,
    inventory: &Inventory,
    history: Option<&Mutex<History>>,
    now: DateTime<Utc>,
) -> Usage {
    let measure = needs_disk(config);
    let mut usage = Usage::default();
    if let Some(h) = history {
        let mut h = lock(h);
        let pending = h.pending_gap.take();
        let images = &inventory.images;
        let r = reconcile(
            &mut h,
            images,
            &inventory.containers,
            &info.id,
            now,
            pending,
            config.history.gap_policy,
        );
        if r.engine_changed {
            tracing::warn!(engine = %info.id, "the history belongs to another engine: counted as a gap");
        }
        tracing::debug!(
            adopted = r.adopted,
            new = r.new,
            dropped = r.dropped,
            gap_used = r.gap_used,
            "history reconciled"
        );
        usage.history = Usage::records_of(images, &h.images);
    }
    if measure {
        let measured = measure_disk(config, info.root_dir.clone(), inventory);
        usage.disk = Some(measured.map_err(|e| e.to_string()));
    }
    usage
}

/// The disk as configured: `disk.path`, else the engine's data root.
pub fn measure_disk(
    config: &Config,
    root_dir: Option<PathBuf>,
    inventory: &Inventory,
) -> Result<disk::DiskUsage, disk::DiskError> {
    let Some(d) = &config.disk else {
        return Err(disk::DiskError {
            path: PathBuf::new(),
            cause: "no disk: section".to_owned(),
        });
    };
    let path = d.path.clone().or(root_dir).unwrap_or_default();
    let images_bytes = match d.measure {
        Measure::Api { .. } => images_bytes(inventory),
        Measure::Statvfs => 0,
    };
    disk::measure(d.measure, &path, images_bytes)
}

/// The images' own bytes (each image's size minus its parent's), as the planner counts them.
#[must_use]
pub fn images_bytes(inventory: &Inventory) -> u64 {
    let sizes: rustc_hash::FxHashMap<_, _> =
        inventory.images.iter().map(|i| (i.id, i.size)).collect();
    inventory
        .images
        .iter()
        .map(|i| {
            let parent = i
                .parent_id
                .and_then(|p| sizes.get(&p).copied())
                .unwrap_or(0);
            i.size.saturating_sub(parent)
        })
        .sum()
}

/// Forget the images the pass deleted (the events worker would too, a moment later).
pub fn forget_deleted(
    history: &Mutex<History>,
    inventory: &Inventory,
    plan: &Plan,
    results: &[DeletionResult],
) {
    let mut h = lock(history);
    for r in results {
        if matches!(r.outcome, Outcome::Deleted | Outcome::AlreadyGone) {
            h.removed(inventory.images[plan.decisions[r.decision].image].id);
        }
    }
}
