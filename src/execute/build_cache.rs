//! Carry out a build cache plan: `POST /build/prune` naming exactly the planned records, wave
//! by wave (children before parents), each call carrying the checks that make the engine keep
//! a record that changed since the plan. Decides nothing the plan did not decide.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::engine::{CachePrune, Engine, EngineError};
use crate::inventory::CacheRecord;
use crate::plan::build_cache::{CacheDeletion, CachePlan, CacheReason};
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

/// Most record IDs in one call (they travel in the query as one regular expression).
const MAX_BATCH: usize = 100;

/// Run the plan's record deletions wave by wave (children first). Within a wave, records
/// whose engine-side checks are the same go in one call (an anchored alternation of their
/// IDs), at most [`MAX_BATCH`] at a time; nothing new starts once `stop` fires. Results come
/// back in plan order.
pub async fn execute<E: Engine>(
    engine: &E,
    plan: &CachePlan,
    records: &[CacheRecord],
    stop: &CancellationToken,
) -> CacheExecution {
    let mut run = Run {
        plan,
        records,
        children: planned_children(plan, records),
        not_deleted: HashSet::new(),
        out: CacheExecution::default(),
    };
    let mut start = 0;
    while start < plan.deletions.len() {
        let wave = plan.deletions[start].wave;
        let end = (plan.deletions[start..].iter())
            .position(|d| d.wave != wave)
            .map_or(plan.deletions.len(), |n| start + n);
        for (checks, batch) in batches(plan, records, &plan.deletions[start..end]) {
            run.batch(engine, checks, &batch, stop).await;
        }
        start = end;
    }
    let mut position = vec![0; plan.decisions.len()];
    for (k, d) in plan.deletions.iter().enumerate() {
        position[d.decision] = k;
    }
    run.out.results.sort_by_key(|r| position[r.decision]);
    run.out
}

/// The deletions of one wave grouped by the checks their calls carry, in plan order.
fn batches<'p>(
    plan: &CachePlan,
    records: &[CacheRecord],
    wave: &'p [CacheDeletion],
) -> Vec<(CachePrune, Vec<&'p CacheDeletion>)> {
    let mut out: Vec<(CachePrune, Vec<&CacheDeletion>)> = Vec::new();
    for d in wave {
        let decision = &plan.decisions[d.decision];
        let mut checks = request(&records[decision.record], &decision.reason);
        checks.ids.clear();
        match out
            .iter_mut()
            .find(|(c, b)| *c == checks && b.len() < MAX_BATCH)
        {
            Some((_, batch)) => batch.push(d),
            None => out.push((checks, vec![d])),
        }
    }
    out
}

/// One execution's state: which planned records were not deleted, and the outcomes so far.
struct Run<'a> {
    plan: &'a CachePlan,
    records: &'a [CacheRecord],
    children: HashMap<&'a str, Vec<&'a str>>,
    not_deleted: HashSet<&'a str>,
    out: CacheExecution,
}

impl<'a> Run<'a> {
    fn record(&self, d: &CacheDeletion) -> &'a CacheRecord {
        &self.records[self.plan.decisions[d.decision].record]
    }

    /// One call for the records of `batch` that may still go; an outcome for each.
    async fn batch<E: Engine>(
        &mut self,
        engine: &E,
        mut checks: CachePrune,
        batch: &[&CacheDeletion],
        stop: &CancellationToken,
    ) {
        let mut ready = Vec::with_capacity(batch.len());
        for &d in batch {
            let record = self.record(d);
            let blocked = (self.children.get(record.id.as_str()))
                .and_then(|kids| kids.iter().find(|k| self.not_deleted.contains(*k)));
            if stop.is_cancelled() {
                self.finish(d, CacheOutcome::NotAttempted, 0);
            } else if self.out.notice.is_some() {
                self.finish(d, skipped("the engine has no build cache API"), 0);
            } else if let Some(child) = blocked {
                let why = format!("child record {} was not deleted", short(child));
                self.finish(d, skipped(&why), 0);
            } else {
                ready.push(d);
            }
        }
        if ready.is_empty() {
            return;
        }
        checks.ids = ready.iter().map(|d| self.record(d).id.clone()).collect();
        match engine.prune_build_cache(&checks).await {
            Ok(report) => {
                for d in ready {
                    let record = self.record(d);
                    if report.deleted.contains(&record.id) {
                        self.finish(d, CacheOutcome::Deleted, record.size);
                    } else {
                        self.finish(d, skipped(&kept_by_engine(&checks)), 0);
                    }
                }
            }
            Err(EngineError::NotFound(message)) => {
                warn!(%message, "{NO_PRUNE_API}");
                self.out.notice = Some(NO_PRUNE_API.to_owned());
                for d in ready {
                    self.finish(d, skipped("the engine has no build cache API"), 0);
                }
            }
            Err(e) => {
                for d in ready {
                    let error = e.to_string();
                    self.finish(d, CacheOutcome::Failed { error }, 0);
                }
            }
        }
    }

    fn finish(&mut self, d: &CacheDeletion, outcome: CacheOutcome, bytes: u64) {
        let record = self.record(d);
        log(
            record,
            d,
            &self.plan.decisions[d.decision].reason,
            &outcome,
            bytes,
        );
        if outcome != CacheOutcome::Deleted {
            self.not_deleted.insert(&record.id);
        }
        self.out.results.push(CacheResult {
            decision: d.decision,
            outcome,
            bytes,
        });
    }
}

fn skipped(reason: &str) -> CacheOutcome {
    CacheOutcome::Skipped {
        reason: reason.to_owned(),
    }
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
/// Records whose calls differ only in `ids` share one call.
#[must_use]
pub fn request(record: &CacheRecord, reason: &CacheReason) -> CachePrune {
    let (unused_for, keep_storage) = match reason {
        CacheReason::UnusedFor {
            unused_for_secs, ..
        }
        | CacheReason::UnheldShared {
            unused_for_secs, ..
        } => (Some(Duration::from_secs(*unused_for_secs)), None),
        CacheReason::OverKeepStorage { keep_storage, .. } => (None, Some(*keep_storage)),
        _ => (None, None),
    };
    CachePrune {
        ids: vec![record.id.clone()],
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::inventory::CacheType;

    fn rec(id: &str, idle_days: i64, size: u64) -> CacheRecord {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        CacheRecord {
            id: id.to_owned(),
            parents: Vec::new(),
            kind: CacheType::Regular,
            description: format!("mount / from exec {id}"),
            size,
            created: Some(now - chrono::Duration::days(30)),
            last_used: Some(now - chrono::Duration::days(idle_days)),
            usage_count: 1,
            shared: false,
            in_use: false,
        }
    }

    #[test]
    fn requests_repeat_the_reason_as_checks_for_the_engine() {
        let old = rec("old", 10, 100);
        let reason = CacheReason::UnusedFor {
            rule: "r".into(),
            idle_secs: 10 * 86_400,
            unused_for_secs: 7 * 86_400,
        };
        let r = request(&old, &reason);
        assert_eq!(r.ids, ["old"]);
        assert_eq!(r.kind, CacheType::Regular);
        assert_eq!(r.unused_for, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!((r.all, r.keep_storage), (false, None));
        let zero = CacheReason::UnusedFor {
            rule: "r".into(),
            idle_secs: 5,
            unused_for_secs: 0,
        };
        assert_eq!(request(&old, &zero).unused_for, None, "0s is no check");
        let mut shared = old.clone();
        shared.shared = true;
        let lru = CacheReason::OverKeepStorage {
            rule: "r".into(),
            total_bytes: 500,
            keep_storage: 300,
        };
        let r = request(&shared, &lru);
        assert_eq!(
            (r.all, r.keep_storage, r.unused_for),
            (true, Some(300), None)
        );
    }
}
