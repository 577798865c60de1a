//! Reading a plan file back for `stagesweep apply`: the document's deletions as a plan over
//! just the images (and build cache records) they delete, refused when the file is not a
//! plan, is inconsistent (a deletion without a wave, an image twice, a parent before its
//! child), was made for another engine, or is too old. Nothing is planned again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::build_cache::SavedCache;
use super::document::{Document, JSON_VERSION};
use crate::inventory::{FUTURE_TOLERANCE, Image, Inventory, Labels};
use crate::plan::{Action, Decision, Deletion, Plan};
use crate::units::fmt_duration;

/// A plan read back from a file: the deleted images and their deletions, in plan order.
#[derive(Debug, Clone)]
pub struct SavedPlan {
    pub engine_id: String,
    pub planned_at: DateTime<Utc>,
    /// The images the plan deletes (its decisions index them).
    pub inventory: Inventory,
    pub plan: Plan,
    /// The build cache records the plan deletes, and the plan over them.
    pub cache: SavedCache,
}

/// Why a plan file cannot be applied. Each names the file and the way out.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read the plan file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not a stagesweep plan: {message} (make one with: stagesweep plan --output json > plan.json)", .path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: plan file version {found}, this stagesweep reads version {JSON_VERSION} (make a new plan with this version)", .path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("{}: this is the report of a prune that already ran, not a plan (make one with: stagesweep plan --output json > plan.json)", .path.display())]
    Executed { path: PathBuf },
    #[error("{}: {what} (the file was edited or is damaged; make a new plan)", .path.display())]
    Inconsistent { path: PathBuf, what: String },
    #[error(
        "the plan was made for engine {planned} but {host} is engine {actual} (make the plan against the engine you apply it to)"
    )]
    OtherEngine {
        planned: String,
        actual: String,
        host: String,
    },
    #[error("the plan was made at {planned_at}, {} ago, more than --max-plan-age {} (make a new plan, or raise --max-plan-age)", fmt_duration(.age.as_secs()), fmt_duration(.max.as_secs()))]
    TooOld {
        planned_at: DateTime<Utc>,
        age: Duration,
        max: Duration,
    },
    #[error(
        "the plan was made at {planned_at}, in the future of the engine's clock (make a new plan)"
    )]
    FromTheFuture { planned_at: DateTime<Utc> },
}

/// What is read first: a newer or older layout is refused before anything else.
#[derive(Deserialize)]
struct FileHead {
    version: u32,
    dry_run: bool,
}

/// Read a plan file.
pub fn read(path: &Path) -> Result<SavedPlan, PlanFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parse a plan file's text (`path` is only named in errors).
pub fn parse(text: &str, path: &Path) -> Result<SavedPlan, PlanFileError> {
    let parse_error = |e: &serde_json::Error| PlanFileError::Parse {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let head: FileHead = serde_json::from_str(text).map_err(|e| parse_error(&e))?;
    if head.version != JSON_VERSION {
        return Err(PlanFileError::Version {
            path: path.to_owned(),
            found: head.version,
        });
    }
    if !head.dry_run {
        return Err(PlanFileError::Executed {
            path: path.to_owned(),
        });
    }
    let file: Document = serde_json::from_str(text).map_err(|e| parse_error(&e))?;
    build(file).map_err(|what| PlanFileError::Inconsistent {
        path: path.to_owned(),
        what,
    })
}

/// The file's deletions as a plan over just the images they delete.
fn build(file: Document<'_>) -> Result<SavedPlan, String> {
    let mut images = Vec::new();
    let mut decisions = Vec::new();
    let mut deletions = Vec::new();
    for f in file
        .images
        .into_iter()
        .filter(|f| f.action == Action::Delete)
    {
        if f.reason.action() != Action::Delete {
            return Err(format!(
                "image {} is a deletion with reason {}",
                f.id,
                f.reason.kind()
            ));
        }
        let wave = f
            .wave
            .ok_or_else(|| format!("deletion of {} has no wave", f.id))?;
        let i = images.len();
        decisions.push(Decision {
            image: i,
            action: Action::Delete,
            policy: f.policy.map(|p| Arc::from(p.as_ref())),
            reason: f.reason.into_owned(),
        });
        deletions.push(Deletion {
            decision: i,
            wave,
            reclaim_bytes: f.reclaimable_bytes.unwrap_or(0),
        });
        images.push(Image {
            id: f.id,
            parent_id: f.parent_id,
            references: f.references.into_owned(),
            digests: f.digests.into_owned(),
            labels: Labels::new(),
            created: f.created,
            last_tagged: f.last_tagged,
            size: f.size,
            shared_size: None,
        });
    }
    check_waves(&images, &deletions)?;
    let cache = super::build_cache::build(file.build_cache)?;
    // Execution order: by wave, keeping the file's order within a wave.
    deletions.sort_by_key(|d| d.wave);
    let reclaimable_bytes = deletions.iter().map(|d| d.reclaim_bytes).sum();
    let order = deletions.iter().map(|d| d.decision).collect();
    Ok(SavedPlan {
        engine_id: file.engine_id.into_owned(),
        planned_at: file.planned_at,
        inventory: Inventory {
            images,
            containers: Vec::new(),
            build_cache: None,
        },
        plan: Plan {
            decisions,
            order,
            deletions,
            reclaimable_bytes,
            sharing_data: file.sharing_data,
            // A saved plan is applied as saved: its disk_pressure deletions are the
            // estimate's, and nothing is measured.
            eviction: None,
        },
        cache,
    })
}

/// Each image once, and every deleted parent in a later wave than its deleted children.
fn check_waves(images: &[Image], deletions: &[Deletion]) -> Result<(), String> {
    let mut wave_of = std::collections::HashMap::with_capacity(images.len());
    for (image, d) in images.iter().zip(deletions) {
        if wave_of.insert(image.id, d.wave).is_some() {
            return Err(format!("image {} is listed twice", image.id));
        }
    }
    for (image, d) in images.iter().zip(deletions) {
        let parent_wave = image.parent_id.and_then(|p| wave_of.get(&p));
        if let Some(&w) = parent_wave.filter(|&&w| w <= d.wave) {
            return Err(format!(
                "image {} (wave {}) would be deleted before its child {} (wave {})",
                image.parent_id.map(|p| p.short()).unwrap_or_default(),
                w,
                image.id.short(),
                d.wave
            ));
        }
    }
    Ok(())
}

/// Refuse a plan made for another engine, older than `max_age`, or from the future (both
/// times on the engine's clock, `now`).
pub fn check(
    saved: &SavedPlan,
    engine_id: &str,
    host: &str,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<(), PlanFileError> {
    if saved.engine_id != engine_id {
        return Err(PlanFileError::OtherEngine {
            planned: saved.engine_id.clone(),
            actual: engine_id.to_owned(),
            host: host.to_owned(),
        });
    }
    if saved.planned_at > now + FUTURE_TOLERANCE {
        return Err(PlanFileError::FromTheFuture {
            planned_at: saved.planned_at,
        });
    }
    let age = (now - saved.planned_at).to_std().unwrap_or(Duration::ZERO);
    if age > max_age {
        return Err(PlanFileError::TooOld {
            planned_at: saved.planned_at,
            age,
            max: max_age,
        });
    }
    Ok(())
}
