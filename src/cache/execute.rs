//! Carry out a build cache plan: one `POST /build/prune` per record, children before parents,
//! each call carrying the checks that make the engine keep a record that changed since the
//! plan. Decides nothing the plan did not decide.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::plan::{CacheDeletion, CachePlan};
use super::reason::CacheReason;
use super::record::CacheRecord;
use crate::engine::{CachePrune, Engine, EngineError};
use crate::units::fmt_bytes;

/// What happened to one planned record deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CacheOutcome {
    /// The engine deleted it.
    Deleted,
    /// Not deleted, and that is no failure: the engine kept it, or a child was not deleted.
    Skipped { reason: String },
    /// The call failed.
    Failed { error: String },
    /// Not attempted: the pass was asked to stop.
    NotAttempted,
}

impl CacheOutcome {
    /// The stable `snake_case` kind, as in JSON.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Skipped { .. } => "skipped",
            Self::Failed { .. } => "failed",
            Self::NotAttempted => "not_attempted",
        }
    }
}

/// The outcome of one planned record deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheResult {
    /// Index into the plan's decisions.
    pub decision: usize,
    pub outcome: CacheOutcome,
    /// Bytes the engine says it freed.
    pub bytes: u64,
}

/// The results, and the notice when the engine turned out to have no build cache API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheExecution {
    pub results: Vec<CacheResult>,
    pub notice: Option<String>,
}

/// The notice when `POST /build/prune` answers 404 (Podman, engines without BuildKit).
pub const NO_PRUNE_API: &str = "this engine has no build cache API (POST /build/prune answered \
     404, as Podman does): build_cache rules are skipped";

/// Run the plan's record deletions one at a time, in plan order (children first), stopping
/// before new ones once `stop` fires.
pub async fn execute<E: Engine>(
    engine: &E,
    plan: &CachePlan,
    records: &[CacheRecord],
    stop: &CancellationToken,
) -> CacheExecution {
    let children = planned_children(plan, records);
    let mut not_deleted: HashSet<&str> = HashSet::new();
    let mut out = CacheExecution::default();
    for d in &plan.deletions {
        let record = &records[plan.decisions[d.decision].record];
        let blocked = (children.get(record.id.as_str()))
            .and_then(|kids| kids.iter().find(|k| not_deleted.contains(*k)));
        let (outcome, bytes) = if stop.is_cancelled() {
            (CacheOutcome::NotAttempted, 0)
        } else if out.notice.is_some() {
            skipped("the engine has no build cache API")
        } else if let Some(child) = blocked {
            skipped(&format!("child record {} was not deleted", short(child)))
        } else {
            let request = request(record, &plan.decisions[d.decision].reason);
            match engine.prune_build_cache(&request).await {
                Ok(report) if report.deleted.contains(&record.id) => {
                    (CacheOutcome::Deleted, report.reclaimed_bytes)
                }
                Ok(_) => skipped(&kept_by_engine(&request)),
                Err(EngineError::NotFound(message)) => {
                    warn!(%message, "{NO_PRUNE_API}");
                    out.notice = Some(NO_PRUNE_API.to_owned());
                    skipped("the engine has no build cache API")
                }
                Err(e) => (
                    CacheOutcome::Failed {
                        error: e.to_string(),
                    },
                    0,
                ),
            }
        };
        log(
            record,
            d,
            &plan.decisions[d.decision].reason,
            &outcome,
            bytes,
        );
        if outcome != CacheOutcome::Deleted {
            not_deleted.insert(&record.id);
        }
        out.results.push(CacheResult {
            decision: d.decision,
            outcome,
            bytes,
        });
    }
    out
}

fn skipped(reason: &str) -> (CacheOutcome, u64) {
    (
        CacheOutcome::Skipped {
            reason: reason.to_owned(),
        },
        0,
    )
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// For each planned record, the planned records that build on it.
fn planned_children<'a>(
    plan: &CachePlan,
    records: &'a [CacheRecord],
) -> HashMap<&'a str, Vec<&'a str>> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for d in &plan.deletions {
        let r = &records[plan.decisions[d.decision].record];
        for p in &r.parents {
            children.entry(p.as_str()).or_default().push(r.id.as_str());
        }
    }
    children
}

/// The call for one record. The checks repeat why the plan deletes it, so that the engine
/// keeps a record used since the plan (`unused_for`), one that became shared (no `all`
/// unless the plan selected a shared record), or the cache already fits (`keep_storage`).
#[must_use]
pub fn request(record: &CacheRecord, reason: &CacheReason) -> CachePrune {
    let (unused_for, keep_storage) = match reason {
        CacheReason::UnusedFor {
            unused_for_secs, ..
        } => (Some(Duration::from_secs(*unused_for_secs)), None),
        CacheReason::OverKeepStorage { keep_storage, .. } => (None, Some(*keep_storage)),
        _ => (None, None),
    };
    CachePrune {
        id: record.id.clone(),
        kind: record.kind.clone(),
        all: record.shared || record.kind.needs_all(),
        unused_for: unused_for.filter(|d| !d.is_zero()),
        keep_storage,
    }
}

fn kept_by_engine(request: &CachePrune) -> String {
    let mut why =
        "the engine did not delete it: gone, in use, or used or shared since the plan".to_owned();
    if let Some(keep) = request.keep_storage {
        why = format!(
            "{why}, or the build cache fits keep_storage {} now",
            fmt_bytes(keep)
        );
    }
    why
}

fn log(
    record: &CacheRecord,
    d: &CacheDeletion,
    reason: &CacheReason,
    o: &CacheOutcome,
    bytes: u64,
) {
    let (id, kind) = (record.short_id(), record.kind.as_str());
    match o {
        CacheOutcome::Deleted => info!(
            record = id,
            kind,
            bytes,
            wave = d.wave,
            reason = %reason,
            "deleted build cache record"
        ),
        CacheOutcome::Failed { error } => {
            warn!(record = id, kind, %error, "build cache record deletion failed");
        }
        CacheOutcome::Skipped { reason } => {
            info!(record = id, kind, %reason, "build cache record skipped");
        }
        CacheOutcome::NotAttempted => {}
    }
}
