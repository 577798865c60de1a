//! A pass as the JSON document (`--output json`): the plan file's types
//! ([`crate::plan_file::Document`]) filled from a [`PassReport`], borrowing its values.
//! Field names are stable (see docs/output.md); `stagesweep apply` reads the same types
//! back. The images are made one at a time as they are written ([`Images`]): at 100 000
//! images a list of them would hold ≈ 50 MB.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeSeq, Serializer};

use super::build_cache;
use super::text::{age_secs, held_back, outcome_by_decision};
use crate::execute::DeletionResult;
use crate::pass::PassReport;
use crate::plan::{Action, Deletion};
use crate::plan_file::{Document, FileImage, FileOutcome, JSON_VERSION};

/// Build the JSON document of a report; `images` lists the decisions whose action is in
/// `shown`, the summary counts all of them.
#[must_use]
pub fn to_json<'a>(report: &'a PassReport, shown: &[Action]) -> Document<'a, Images<'a>> {
    let mut deletion = vec![None; report.plan.decisions.len()];
    for d in &report.plan.deletions {
        deletion[d.decision] = Some(d);
    }
    let images = Images {
        report,
        shown: (report.plan.order.iter().copied())
            .filter(|&i| shown.contains(&report.plan.decisions[i].action))
            .collect(),
        outcomes: outcome_by_decision(report),
        deletion,
        deferred: held_back(report).is_some(),
    };
    Document {
        version: JSON_VERSION,
        dry_run: report.summary.dry_run,
        engine_id: Cow::Borrowed(&report.engine_id),
        planned_at: report.planned_at,
        summary: Some(&report.summary),
        reclaimable_bytes: report.plan.reclaimable_bytes,
        builds: report.builds.as_ref(),
        disk: report.usage.disk.as_ref().and_then(|d| d.as_ref().ok()),
        eviction: report.eviction.as_ref(),
        sharing_data: report.plan.sharing_data,
        images,
        build_cache: build_cache::to_json(
            &report.cache,
            report.cache_records(),
            report.planned_at,
            shown,
        ),
        host_hint: report.host_hint.as_deref().map(Cow::Borrowed),
        unplanned_removals: report.results.iter().flat_map(|r| &r.unplanned).collect(),
    }
}

/// The document's images, in display order: each one is made as it is written.
pub struct Images<'a> {
    report: &'a PassReport,
    /// The decisions listed, in display order.
    shown: Vec<usize>,
    outcomes: Vec<Option<&'a DeletionResult>>,
    deletion: Vec<Option<&'a Deletion>>,
    /// Deletions a build held back.
    deferred: bool,
}

impl Images<'_> {
    /// Decision `i` as a document image.
    fn image(&self, i: usize) -> FileImage<'_> {
        let report = self.report;
        let d = &report.plan.decisions[i];
        let image = &report.inventory.images[d.image];
        let (r, del) = (self.outcomes[i], self.deletion[i]);
        FileImage {
            id: image.id,
            references: Cow::Borrowed(&image.references),
            digests: Cow::Borrowed(&image.digests),
            parent_id: image.parent_id,
            created: image.created,
            last_tagged: image.last_tagged,
            age_secs: age_secs(image, report.planned_at),
            size: image.size,
            action: d.action,
            policy: d.policy.as_deref().map(Cow::Borrowed),
            reason: Cow::Borrowed(&d.reason),
            reason_text: d.reason.to_string(),
            history: report.usage.record(d.image).copied(),
            wave: del.map(|x| x.wave),
            reclaimable_bytes: del.map(|x| x.reclaim_bytes),
            outcome: match r {
                Some(r) => Some(FileOutcome::Executed(&r.outcome)),
                None if self.deferred && d.action == Action::Delete => Some(FileOutcome::DEFERRED),
                None => None,
            },
            reclaimed_bytes: r.map_or(0, |r| r.bytes),
        }
    }
}

impl Serialize for Images<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.shown.len()))?;
        for &i in &self.shown {
            seq.serialize_element(&self.image(i))?;
        }
        seq.end()
    }
}
