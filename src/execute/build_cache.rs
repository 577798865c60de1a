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

/// Run the plan's record deletions: records whose engine-side checks are the same go in one
/// call (an anchored alternation of their IDs), at most [`MAX_BATCH`] at a time, a record's
/// planned children in the same call or an earlier one. The engine deletes a record only once
/// nothing builds on it and tries again within the call after each deletion, so one call
/// takes a chain children first, and a parent whose child stays, stays. Nothing new starts
/// once `stop` fires. Results come back in plan order.
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
    for (checks, batch) in batches(plan, records, &run.children) {
        run.batch(engine, checks, &batch, stop).await;
    }
    let mut position = vec![0; plan.decisions.len()];
    for (k, d) in plan.deletions.iter().enumerate() {
        position[d.decision] = k;
    }
    run.out.results.sort_by_key(|r| position[r.decision]);
    run.out
}

/// The deletions grouped by the checks their calls carry, in plan order (children before
/// parents): a deletion joins the last call with its checks unless that call is full or comes
/// before a call holding one of its planned children.
fn batches<'p>(
    plan: &'p CachePlan,
    records: &[CacheRecord],
    children: &HashMap<&str, Vec<&str>>,
) -> Vec<(CachePrune, Vec<&'p CacheDeletion>)> {
    let mut out: Vec<(CachePrune, Vec<&CacheDeletion>)> = Vec::new();
    let mut call_of: HashMap<&str, usize> = HashMap::new();
    for d in &plan.deletions {
        let decision = &plan.decisions[d.decision];
        let record = &records[decision.record];
        let mut checks = request(record, &decision.reason);
        checks.ids.clear();
        let after = (children.get(record.id.as_str()).into_iter().flatten())
            .filter_map(|kid| call_of.get(kid).copied())
            .max()
            .unwrap_or(0);
        let joins = (out.iter().rposition(|(c, _)| *c == checks))
            .filter(|&k| k >= after && out[k].1.len() < MAX_BATCH);
        let k = joins.unwrap_or_else(|| {
            out.push((checks, Vec::new()));
            out.len() - 1
        });
        out[k].1.push(d);
        call_of.insert(record.id.as_str(), k);
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
            let blocked = self.kept_child(record);
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
                let deleted: HashSet<&str> = report.deleted.iter().map(String::as_str).collect();
                for d in ready {
                    let record = self.record(d);
                    if deleted.contains(record.id.as_str()) {
                        self.finish(d, CacheOutcome::Deleted, record.size);
                    } else if let Some(child) = self.kept_child(record) {
                        let why = format!("child record {} was not deleted", short(child));
                        self.finish(d, skipped(&why), 0);
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

    /// A planned child of `record` that was not deleted (it holds `record` on the engine).
    fn kept_child(&self, record: &CacheRecord) -> Option<&'a str> {
        let kids = self.children.get(record.id.as_str())?;
        kids.iter().copied().find(|k| self.not_deleted.contains(k))
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

    /// A plan deleting `records` in the given order, with the given waves, every reason
    /// `unused_for` (shared records' calls carry `all`, so their checks differ).
    fn plan_of(records: &[CacheRecord], waves: &[usize]) -> CachePlan {
        let reason = CacheReason::UnusedFor {
            rule: "r".into(),
            idle_secs: 10,
            unused_for_secs: 1,
        };
        CachePlan {
            decisions: (0..records.len())
                .map(|record| crate::plan::build_cache::CacheDecision {
                    record,
                    action: crate::plan::Action::Delete,
                    rule: Some("r".into()),
                    reason: reason.clone(),
                })
                .collect(),
            order: (0..records.len()).collect(),
            deletions: (waves.iter().enumerate())
                .map(|(decision, &wave)| CacheDeletion {
                    decision,
                    wave,
                    reclaim_bytes: 1,
                })
                .collect(),
            reclaimable_bytes: 0,
            total_bytes: 0,
        }
    }

    fn calls(plan: &CachePlan, records: &[CacheRecord]) -> Vec<Vec<String>> {
        let children = planned_children(plan, records);
        (batches(plan, records, &children).into_iter())
            .map(|(_, b)| b.iter().map(|d| records[d.decision].id.clone()).collect())
            .collect()
    }

    #[test]
    fn a_chain_goes_in_one_call_and_a_parent_never_in_a_call_before_its_child() {
        let mut leaf = rec("leaf", 10, 1);
        leaf.parents = vec!["base".into()];
        let mut mount = rec("mount", 10, 1);
        mount.kind = CacheType::ExecCachemount;
        mount.shared = true;
        let mut mid = rec("mid", 10, 1);
        mid.parents = vec!["base".into()];
        mid.shared = true;
        // leaf (private) and mount, mid (shared: their call carries `all`) in wave 0; base
        // (private) holds leaf and mid: it may not join leaf's call, which comes before mid's.
        let records = [leaf, mount, mid, rec("base", 10, 1)];
        let plan = plan_of(&records, &[0, 0, 0, 1]);
        assert_eq!(
            calls(&plan, &records),
            [vec!["leaf"], vec!["mount", "mid"], vec!["base"]]
        );
        // Without the shared child, base joins its child's call; types do not split calls.
        let records = [records[0].clone(), records[1].clone(), records[3].clone()];
        let plan = plan_of(&records, &[0, 0, 1]);
        assert_eq!(
            calls(&plan, &records),
            [vec!["leaf", "base"], vec!["mount"]]
        );
    }

    #[test]
    fn a_call_names_at_most_a_hundred_records_and_a_long_chain_stays_in_order() {
        let n = 2 * MAX_BATCH + 10;
        let records: Vec<CacheRecord> = (0..n)
            .map(|i| {
                let mut r = rec(&format!("r{i}"), 10, 1);
                if i + 1 < n {
                    r.parents = vec![format!("r{}", i + 1)];
                }
                r
            })
            .collect();
        let plan = plan_of(&records, &(0..n).collect::<Vec<_>>());
        let calls = calls(&plan, &records);
        let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, [MAX_BATCH, MAX_BATCH, 10]);
        let flat: Vec<String> = calls.concat();
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        assert_eq!(flat, ids, "children first, across calls");
    }
}
