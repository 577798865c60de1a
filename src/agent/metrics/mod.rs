//! The agent's Prometheus metrics (prometheus-client), served by `/metrics` in the format the
//! scraper asks for ([`super::exposition`]). Fed from pass summaries and the loop; decides
//! nothing.
//!
//! Conventions (checked by `tests/docs/metrics.rs` with `promtool check metrics`, against the
//! table in docs/metrics.md, the alerts and the dashboard), for anyone adding a metric:
//! - every name starts with `stagesweep_` (the registry adds it), except the standard
//!   `process_*` ones ([`super::process_metrics`]);
//! - counters are registered **without** `_total` (prometheus-client appends it), and a unit
//!   is given with `register_with_unit` (`Unit::Bytes`, `Unit::Seconds`), never spelled in the
//!   name: `reclaimed` + bytes becomes `stagesweep_reclaimed_bytes_total`;
//! - "how many right now" is a gauge (cleared and set per pass: `images_kept`), "how many
//!   ever" a counter; a timestamp that has no value yet is absent, not 0 ([`OptionalGauge`]);
//! - label values an alert or dashboard selects on are created at start-up with 0
//!   (`passes_total{result="failure"}`), so `increase()` sees the first one;
//! - label values are bounded sets (policy names, reason kinds), never free text or IDs;
//! - each metric has a row in the metrics table of docs/metrics.md.

use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::exposition::{self, Format};
use super::metric_labels::{
    Label, OptionalGauge, PassResult, SkipReason, label, set_gauges, set_optional, to_u64,
    unix_secs,
};
use crate::execute::Summary;

mod forecast;
mod register;

/// Every metric the agent exports.
pub struct Metrics {
    registry: Registry,
    passes: Family<Label, Counter>,
    images_deleted: Family<Label, Counter>,
    reclaimed_bytes: Family<Label, Counter>,
    images_kept: Family<Label, Gauge>,
    images_skipped: Counter,
    images_untagged_only: Counter,
    deletions_failed: Counter,
    unplanned_removals: Counter,
    pass_duration: Histogram,
    last_success: OptionalGauge,
    next_pass: OptionalGauge,
    images_matched: Family<Label, Gauge>,
    ticks_skipped: Family<Label, Counter>,
    config_reloads: Family<Label, Counter>,
    docker_up: Gauge,
    history_caught_up: Gauge,
    history_behind_since: OptionalGauge,
    deferred_passes: Family<Label, Counter>,
    build_lock_wait: Histogram,
    disk_used: Gauge<f64, AtomicU64>,
    disk_high: Gauge<f64, AtomicU64>,
    disk_pressure_stuck: Gauge,
    build_cache_bytes: Gauge,
    build_cache_reclaimed: Family<Label, Counter>,
    forecast: forecast::ForecastMetrics,
    /// `stagesweep_group_bytes`, set by the backend after each pass.
    pub groups: super::group_gauges::GroupGauges,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            passes: Family::default(),
            images_deleted: Family::default(),
            reclaimed_bytes: Family::default(),
            images_kept: Family::default(),
            images_skipped: Counter::default(),
            images_untagged_only: Counter::default(),
            deletions_failed: Counter::default(),
            unplanned_removals: Counter::default(),
            pass_duration: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            last_success: OptionalGauge::default(),
            next_pass: OptionalGauge::default(),
            images_matched: Family::default(),
            ticks_skipped: Family::default(),
            config_reloads: Family::default(),
            docker_up: Gauge::default(),
            history_caught_up: Gauge::default(),
            history_behind_since: OptionalGauge::default(),
            deferred_passes: Family::default(),
            // 1 s … 2048 s: the default max_defer (30 min) falls in the last bucket.
            build_lock_wait: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            disk_used: Gauge::default(),
            disk_high: Gauge::default(),
            disk_pressure_stuck: Gauge::default(),
            build_cache_bytes: Gauge::default(),
            build_cache_reclaimed: Family::default(),
            forecast: forecast::ForecastMetrics::default(),
            groups: super::group_gauges::GroupGauges::default(),
        };
        m.register();
        m.precreate();
        m
    }

    /// The disk's last measurement: used ratio and `high` ratio.
    pub fn set_disk(&self, used: f64, high: f64) {
        self.disk_used.set(used);
        self.disk_high.set(high);
    }

    /// The disk forecast after a check: fill rates and times until `high`.
    pub fn set_forecast(&self, forecast: &crate::agent::forecast::Forecast) {
        self.forecast.set(forecast);
    }

    /// Count a pressure pass the forecast started before the disk reached `high`.
    pub fn forecast_pass_started(&self) {
        self.forecast.pass_started();
    }

    /// Count a pass that produced a summary.
    pub fn record_summary(&self, summary: &Summary, finished: DateTime<Utc>) {
        let result = if summary.some_failed() {
            PassResult::Partial
        } else {
            PassResult::Success
        };
        self.passes
            .get_or_create(&label("result", result.as_str()))
            .inc();
        self.count_images(summary);
        self.pass_duration.observe(summary.duration_secs);
        set_gauges(&self.images_kept, "reason", &summary.kept_by_reason);
        set_gauges(&self.images_matched, "policy", &summary.matched_by_policy);
        set_optional(&self.last_success, Some(unix_secs(finished)));
        if let Some((used, high)) = summary.disk {
            self.set_disk(used, high);
        }
        self.disk_pressure_stuck
            .set(i64::from(summary.disk_pressure_stuck));
        self.record_build_wait(summary);
        self.record_build_cache(summary);
    }

    /// Count what a pass did to images (deleted, reclaimed, skipped, untagged only, failed),
    /// also for a pass that stopped part-way because docker went away.
    pub fn count_images(&self, summary: &Summary) {
        for (policy, n) in &summary.deleted_by_policy {
            self.images_deleted
                .get_or_create(&label("policy", policy))
                .inc_by(to_u64(*n));
        }
        for (policy, bytes) in &summary.bytes_by_policy {
            self.reclaimed_bytes
                .get_or_create(&label("policy", policy))
                .inc_by(*bytes);
        }
        self.images_skipped.inc_by(to_u64(summary.skipped));
        self.images_untagged_only
            .inc_by(to_u64(summary.untagged_only));
        self.deletions_failed.inc_by(to_u64(summary.failed));
        self.unplanned_removals
            .inc_by(to_u64(summary.unplanned_removals));
    }

    fn record_build_wait(&self, summary: &Summary) {
        if let Some(waited) = summary.build_wait_secs {
            self.build_lock_wait.observe(waited);
        }
        if summary.build_deferrals > 0 {
            let result = if summary.deferred > 0 {
                "skipped"
            } else {
                "resumed"
            };
            self.deferred_passes
                .get_or_create(&label("result", result))
                .inc();
        }
    }

    fn record_build_cache(&self, summary: &Summary) {
        let cache = &summary.build_cache;
        self.build_cache_bytes
            .set(i64::try_from(cache.total_bytes).unwrap_or(i64::MAX));
        for (rule, bytes) in &cache.bytes_by_rule {
            self.build_cache_reclaimed
                .get_or_create(&label("rule", rule))
                .inc_by(*bytes);
        }
    }

    /// Count a pass that failed as a whole.
    pub fn record_failure(&self, duration_secs: f64) {
        self.passes
            .get_or_create(&label("result", PassResult::Failure.as_str()))
            .inc();
        self.pass_duration.observe(duration_secs);
    }

    pub fn tick_skipped(&self, reason: SkipReason) {
        self.ticks_skipped
            .get_or_create(&label("reason", reason.as_label()))
            .inc();
    }

    pub fn set_next_pass(&self, at: Option<DateTime<Utc>>) {
        set_optional(&self.next_pass, at.map(unix_secs));
    }

    /// Whether the history follows the engine's events, and since when it does not.
    pub fn set_history(&self, caught_up: bool, behind_since: Option<DateTime<Utc>>) {
        self.history_caught_up.set(i64::from(caught_up));
        set_optional(&self.history_behind_since, behind_since.map(unix_secs));
    }

    pub fn set_docker_up(&self, up: bool) {
        self.docker_up.set(i64::from(up));
    }

    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.config_reloads
            .get_or_create(&label("result", result))
            .inc();
    }

    /// The exposition in `format`.
    #[must_use]
    pub fn encode_as(&self, format: Format) -> String {
        exposition::encode(&self.registry, format)
    }

    /// The `OpenMetrics` text exposition.
    #[must_use]
    pub fn encode(&self) -> String {
        self.encode_as(Format::OpenMetrics)
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
