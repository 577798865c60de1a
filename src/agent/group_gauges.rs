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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::engine::fake::{FakeEngine, container, image};
    use crate::pass::{PassOptions, run_pass};

    fn parse(metrics: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        crate::config::parse_str(
            &format!(
                "metrics:\n{metrics}policies:\n  - name: b\n    match:\n      labels: [stage=builder]\n    min_age: 1h\n"
            ),
            "t.yaml",
        )
    }

    fn exposition(g: &GroupGauges) -> String {
        let mut registry = Registry::with_prefix("stagesweep");
        g.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        text
    }

    #[tokio::test]
    async fn the_gauges_show_what_the_pass_left_by_group_the_largest_then_other() {
        let now = DateTime::<Utc>::from_timestamp(1_750_000_000, 0).expect("valid");
        let old = |seed: &str, project: &str, size: u64| {
            (image(seed)
                .label("stage", "builder")
                .label("project", project))
            .size(size)
            .age(now, Duration::from_secs(5 * 3600))
        };
        let engine = FakeEngine::builder()
            .clock(now)
            .image(old("gone", "a", 5000))
            .image(old("used", "b", 3000))
            .container(container("ctr", "used", "running"))
            .image(old("young", "c", 1000).age(now, Duration::from_secs(60)))
            .build();
        let config = parse("  group_by: project\n  groups: 1\n").expect("valid");
        let stop = CancellationToken::new();
        let report = run_pass(&engine, &config, now, &PassOptions::default(), &stop)
            .await
            .expect("pass");
        assert_eq!(report.summary.deleted, 1);
        let g = GroupGauges::default();
        g.update(&report, &config.metrics);
        let text = exposition(&g);
        assert!(
            text.contains(r#"stagesweep_group_bytes{group="b",state="protected"} 3000"#),
            "{text}"
        );
        assert!(
            text.contains(r#"stagesweep_group_bytes{group="other",state="kept"} 1000"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"group="a""#),
            "deleted by the pass: {text}"
        );
        let series = text
            .lines()
            .filter(|l| l.starts_with("stagesweep_group"))
            .count();
        assert_eq!(series, 3 * 4, "b, other, shared; four states each: {text}");

        let off = parse("  group_by: \"off\"\n").expect("valid");
        g.update(&report, &off.metrics);
        assert!(
            !exposition(&g).contains("stagesweep_group_bytes{"),
            "cleared, none set"
        );
    }

    #[test]
    fn bad_values_are_errors_that_say_the_way_out() {
        let default = parse("  enabled: true\n").expect("valid");
        assert_eq!(
            default.metrics.group_by,
            Some(crate::config::SpaceGroup::Policy)
        );
        assert_eq!(default.metrics.groups, 10);
        let e = parse("  groups: 0\n").expect_err("0 groups").to_string();
        assert!(e.contains("t.yaml:2:11") && e.contains("1..=50"), "{e}");
        let e = parse("  group_by: \"a b\"\n")
            .expect_err("a space")
            .to_string();
        assert!(
            e.contains("metrics.group_by") && e.contains("label:<key>"),
            "{e}"
        );
    }
}
