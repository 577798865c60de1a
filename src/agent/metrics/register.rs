//! What the agent exports, by name: each metric's name, help text and unit, and the label
//! values that exist from the start (at 0). The conventions are in [`super`].

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::Metrics;
use crate::agent::metric_labels::{PassResult, SkipReason, label};
use crate::agent::process_metrics::ProcessCollector;

impl Metrics {
    pub(super) fn register(&mut self) {
        let mut registry = std::mem::take(&mut self.registry);
        registry.register_collector(Box::new(ProcessCollector));
        let r = registry.sub_registry_with_prefix("stagesweep");
        self.register_passes(r);
        self.register_history(r);
        self.register_waits_and_disk(r);
        self.forecast.register(r);
        self.groups.register(r);
        self.registry = registry;
    }

    /// Build information, docker, passes and their images.
    fn register_passes(&self, r: &mut Registry) {
        r.register(
            "build",
            "Build information: the version as a label, value 1",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        r.register(
            "docker_up",
            "1 when docker answered the last probe or pass, 0 when it did not (or not yet)",
            self.docker_up.clone(),
        );
        r.register(
            "passes",
            "Passes run, by result (success, partial: some deletions failed, failure: failed as a whole)",
            self.passes.clone(),
        );
        r.register(
            "images_deleted",
            "Images deleted, by policy (each confirmed by the engine's answer to our calls)",
            self.images_deleted.clone(),
        );
        r.register_with_unit(
            "reclaimed",
            "Bytes freed by deletions (the plan's estimate), by policy",
            Unit::Bytes,
            self.reclaimed_bytes.clone(),
        );
        r.register(
            "images_kept",
            "Images the last pass kept although a policy matched them, by reason",
            self.images_kept.clone(),
        );
        r.register(
            "images_skipped",
            "Planned deletions the daemon refused (409 conflict) or a last check stopped",
            self.images_skipped.clone(),
        );
        r.register(
            "images_untagged_only",
            "Planned deletions the engine answered by untagging only: the image stayed",
            self.images_untagged_only.clone(),
        );
        r.register(
            "deletions_failed",
            "Deletions that failed with an error",
            self.deletions_failed.clone(),
        );
        r.register(
            "unplanned_removals",
            "References and images the engine removed, by its own answers, that no plan asked for (another actor changed a tag between the re-check and the delete)",
            self.unplanned_removals.clone(),
        );
        r.register_with_unit(
            "pass_duration",
            "Duration of a pass",
            Unit::Seconds,
            self.pass_duration.clone(),
        );
        r.register_with_unit(
            "last_pass_success_timestamp",
            "Unix time of the last pass that did not fail as a whole; absent until the first since start",
            Unit::Seconds,
            self.last_success.clone(),
        );
        r.register_with_unit(
            "next_pass_timestamp",
            "Unix time of the next scheduled pass (after jitter); absent when none is planned",
            Unit::Seconds,
            self.next_pass.clone(),
        );
        r.register(
            "images_matched",
            "Images selected by each policy in the last pass",
            self.images_matched.clone(),
        );
        r.register(
            "ticks_skipped",
            "Schedule ticks skipped, by reason (pass_running, docker_unreachable)",
            self.ticks_skipped.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reloads, by result (success, failure)",
            self.config_reloads.clone(),
        );
        r.register_with_unit(
            "build_cache",
            "Build cache the engine held at the last pass (before its deletions)",
            Unit::Bytes,
            self.build_cache_bytes.clone(),
        );
        r.register_with_unit(
            "build_cache_reclaimed",
            "Build cache freed, as the engine reports it, by rule",
            Unit::Bytes,
            self.build_cache_reclaimed.clone(),
        );
    }

    /// Whether the history follows the engine's events.
    fn register_history(&self, r: &mut Registry) {
        r.register(
            "history_caught_up",
            "1 while the history follows the engine's events (replayed and reconciled since the last connection), 0 while it does not (or not yet)",
            self.history_caught_up.clone(),
        );
        r.register_with_unit(
            "history_behind_since_timestamp",
            "Unix time since which the history has not followed the engine's events; absent while it does",
            Unit::Seconds,
            self.history_behind_since.clone(),
        );
    }

    /// Build waits and the disk gauges.
    fn register_waits_and_disk(&self, r: &mut Registry) {
        r.register(
            "deferred_passes",
            "Passes whose deletions a running build held back, by result (resumed: deleted \
             after the wait; skipped: gave up or stopped)",
            self.deferred_passes.clone(),
        );
        r.register_with_unit(
            "build_lock_wait",
            "Time a pass's deletions waited for running builds (build lock or build steps)",
            Unit::Seconds,
            self.build_lock_wait.clone(),
        );
        r.register(
            "disk_used_ratio",
            "Used ratio of the engine's disk (1 - available/capacity, as kubelet counts it)",
            self.disk_used.clone(),
        );
        r.register(
            "disk_high_ratio",
            "The disk.high watermark as a ratio",
            self.disk_high.clone(),
        );
        r.register(
            "disk_pressure_stuck",
            "1 when the last pass evicted under disk pressure and left the disk at or over \
             disk.high (a forecast pass: the high it planned with) with nothing the \
             disk_pressure policies may evict, else 0",
            self.disk_pressure_stuck.clone(),
        );
    }

    /// Label values that alerts and the dashboard select on exist from the start, at 0.
    pub(super) fn precreate(&self) {
        for result in PassResult::ALL {
            self.passes
                .get_or_create(&label("result", result.as_str()))
                .inc_by(0);
        }
        for reason in SkipReason::ALL {
            self.ticks_skipped
                .get_or_create(&label("reason", reason.as_label()))
                .inc_by(0);
        }
        for result in ["success", "failure"] {
            self.config_reloads
                .get_or_create(&label("result", result))
                .inc_by(0);
        }
        for result in ["resumed", "skipped"] {
            self.deferred_passes
                .get_or_create(&label("result", result))
                .inc_by(0);
        }
    }
}
