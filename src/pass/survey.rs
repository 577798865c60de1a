//! What `stagesweep du` reads: the inputs of one pass gathered as a dry run gathers them
//! (one `/info`, the listings, one data usage, the history, the disk when a policy needs it)
//! and planned as `plan` plans, but without the per-image tag-time inspects, and with the
//! history read only: never written, never locked. A history that cannot be read is a
//! note, not an error. Decides nothing; changes nothing.

use chrono::{DateTime, Utc};

use super::error::PassError;
use super::history::{HistoryUse, Session};
use super::inputs::gather;
use crate::config::Config;
use crate::engine::Engine;
use crate::history::Record;
use crate::inventory::Inventory;
use crate::plan::Plan;
use crate::plan::build_cache::CachePlan;

/// The engine's state and the plan a dry run would make of it now.
#[derive(Debug, Clone)]
pub struct Survey {
    /// The time planned for, on the engine's clock.
    pub planned_at: DateTime<Utc>,
    pub inventory: Inventory,
    pub plan: Plan,
    /// The build cache plan (its records are `inventory.build_cache`).
    pub cache: CachePlan,
    /// Each image's history record, indexed like the images (empty without a history).
    pub history: Vec<Option<Record>>,
    /// `LayersSize` of the engine's data usage, when it tells it.
    pub layers_size: Option<u64>,
    /// What the figures lack and why (no history, no data usage, no build cache).
    pub notes: Vec<String>,
}

/// Survey the engine at `now`. Fails only when the engine cannot be listed.
pub async fn survey<E: Engine>(
    engine: &E,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Survey, PassError> {
    let mut notes = Vec::new();
    let path = &config.history.path;
    let session = if !config.history.enabled {
        notes.push("history.enabled is false: no last use".to_owned());
        Session::Off
    } else if !path.exists() {
        notes.push(format!(
            "no history file at {}: no last use (the agent keeps one)",
            path.display()
        ));
        Session::Off
    } else {
        match Session::open(HistoryUse::File, config, true) {
            Ok(session) => session,
            Err(e) => {
                tracing::warn!(error = %e, "going on without last use");
                notes.push(format!("{e}: going on without last use"));
                Session::Off
            }
        }
    };
    let snapshot = Box::pin(gather(engine, config, now, &session, false, false)).await?;
    // The session is dropped unwritten: a dry-run history never touches the file.
    drop(session);
    notes.extend(snapshot.cache.notice);
    if snapshot.image_store == crate::engine::ImageStore::Containerd
        && snapshot.layers_size.is_some()
    {
        notes.push(
            "on the containerd image store, LayersSize also counts the images' compressed \
             content beside their unpacked layers: the shared line holds that copy too"
                .to_owned(),
        );
    }
    Ok(Survey {
        planned_at: snapshot.planned_at,
        inventory: snapshot.inventory,
        plan: snapshot.plan,
        cache: snapshot.cache.plan,
        history: snapshot.usage.history,
        layers_size: snapshot.layers_size,
        notes,
    })
}
