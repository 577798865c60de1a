//! `stagesweep_group_bytes{group, state}`: where the space goes, as `stagesweep du` shows it
//! (`report::du`), set after each pass from that pass's own listing, data usage and plan (no
//! call of its own), minus what the pass deleted. The label set is bounded: the
//! `metrics.groups` largest groups by name, then `other`, `shared` and `build cache`, each
//! with the four states; `metrics.group_by: off` exports none.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::config::MetricsConfig;
use crate::execute::{CacheOutcome, Outcome};
use crate::pass::PassReport;
use crate::report::du::{self, DuInput, DuReport, State};

type GroupLabel = [(&'static str, String); 2];

/// The per-group gauges.
#[derive(Debug, Default)]
pub struct GroupGauges {
    bytes: Family<GroupLabel, Gauge>,
}

impl GroupGauges {
    /// Register under the agent's prefix.
    pub fn register(&self, r: &mut Registry) {
        r.register_with_unit(
            "group",
            "Bytes the engine stores, by group (metrics.group_by; the largest metrics.groups, then other, shared and build cache) and state (reclaimable: a pass now would delete it; pressure: only a disk_pressure policy would; protected: in use or protected; kept: the rest), each byte counted once, after the last pass",
            Unit::Bytes,
            self.bytes.clone(),
        );
    }

    /// Set the gauges from a finished pass (cleared first: groups come and go).
    pub fn update(&self, report: &PassReport, config: &MetricsConfig) {
        self.bytes.clear();
        if let Some(by) = &config.group_by {
            self.set(&group(report, by, config.groups));
        }
    }

    /// Set the gauges from a `du` report (after clearing them, [`Self::update`] does).
    pub fn set(&self, report: &DuReport) {
        for row in &report.groups {
            for state in State::ALL {
                let bytes = row.state_bytes(state);
                let label = [
                    ("group", row.group.clone()),
                    ("state", state.name().to_owned()),
                ];
                self.bytes
                    .get_or_create(&label)
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
    }
}

/// The `du` report of what a pass leaves: its plan, without the images and records it
/// deleted.
#[must_use]
pub fn group(report: &PassReport, by: &crate::config::SpaceGroup, top: usize) -> DuReport {
    let mut gone_images = vec![false; report.inventory.images.len()];
    for r in &report.results {
        if matches!(r.outcome, Outcome::Deleted | Outcome::AlreadyGone) {
            gone_images[report.plan.decisions[r.decision].image] = true;
        }
    }
    let records = report.cache_records();
    let mut gone_records = vec![false; records.len()];
    for r in &report.cache.results {
        if matches!(r.outcome, CacheOutcome::Deleted) {
            gone_records[report.cache.plan.decisions[r.decision].record] = true;
        }
    }
    let input = DuInput {
        images: &report.inventory.images,
        plan: &report.plan,
        records,
        cache: &report.cache.plan,
        history: &report.usage.history,
        layers_size: report.layers_size,
        planned_at: report.planned_at,
        gone_images: &gone_images,
        gone_records: &gone_records,
    };
    du::group(&input, by, Some(top))
}
