//! The agent's Prometheus metrics (`OpenMetrics` text via prometheus-client).
//!
//! Counters are registered without `_total`: prometheus-client appends it. Every name is
//! prefixed `stagesweep_`. Fed from pass summaries; decides nothing.

use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::pass::Summary;

/// One label, e.g. `[("policy", "builder-stages")]`.
type Label = [(&'static str, String); 1];

fn label(key: &'static str, value: &str) -> Label {
    [(key, value.to_owned())]
}

/// How a pass ended, for `passes_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassResult {
    /// Every planned deletion was carried out (or skipped/gone).
    Success,
    /// The pass ran but some deletions failed.
    Partial,
    /// The pass failed as a whole (inventory unreadable, engine unreachable, lock error).
    Failure,
}

impl PassResult {
    fn as_str(self) -> &'static str {
        match self {
            PassResult::Success => "success",
            PassResult::Partial => "partial",
            PassResult::Failure => "failure",
        }
    }
}

/// Every metric the agent exports.
pub struct Metrics {
    registry: Registry,
    passes: Family<Label, Counter>,
    images_deleted: Family<Label, Counter>,
    bytes_reclaimed: Family<Label, Counter>,
    images_skipped: Family<Label, Counter>,
    deletions_failed: Counter,
    pass_duration: Histogram,
    last_success: Gauge<f64, AtomicU64>,
    next_pass: Gauge<f64, AtomicU64>,
    images_matched: Family<Label, Gauge>,
    ticks_skipped: Counter,
    config_reloads: Family<Label, Counter>,
    build_cache_bytes: Gauge,
    build_cache_reclaimed: Family<Label, Counter>,
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
            registry: Registry::with_prefix("stagesweep"),
            passes: Family::default(),
            images_deleted: Family::default(),
            bytes_reclaimed: Family::default(),
            images_skipped: Family::default(),
            deletions_failed: Counter::default(),
            pass_duration: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            last_success: Gauge::default(),
            next_pass: Gauge::default(),
            images_matched: Family::default(),
            ticks_skipped: Counter::default(),
            config_reloads: Family::default(),
            build_cache_bytes: Gauge::default(),
            build_cache_reclaimed: Family::default(),
        };
        m.register();
        m
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "passes",
            "Passes run, by result (success, partial, failure)",
            self.passes.clone(),
        );
        r.register(
            "images_deleted",
            "Images deleted, by policy",
            self.images_deleted.clone(),
        );
        r.register(
            "bytes_reclaimed",
            "Bytes reclaimed (estimate), by policy",
            self.bytes_reclaimed.clone(),
        );
        r.register(
            "images_skipped",
            "Images kept or skipped, by reason, summed over passes",
            self.images_skipped.clone(),
        );
        r.register(
            "deletions_failed",
            "Deletions that failed",
            self.deletions_failed.clone(),
        );
        r.register_with_unit(
            "pass_duration",
            "Duration of a pass",
            Unit::Seconds,
            self.pass_duration.clone(),
        );
        r.register_with_unit(
            "last_pass_success_timestamp",
            "Unix time of the last pass that did not fail as a whole",
            Unit::Seconds,
            self.last_success.clone(),
        );
        r.register_with_unit(
            "next_pass_timestamp",
            "Unix time of the next scheduled pass",
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
            "Schedule ticks skipped because a pass was running or docker was unreachable",
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
        for (policy, n) in &summary.deleted_by_policy {
            self.images_deleted
                .get_or_create(&label("policy", policy))
                .inc_by(to_u64(*n));
        }
        for (policy, bytes) in &summary.bytes_by_policy {
            self.bytes_reclaimed
                .get_or_create(&label("policy", policy))
                .inc_by(*bytes);
        }
        for (reason, n) in &summary.kept_by_reason {
            self.images_skipped
                .get_or_create(&label("reason", reason))
                .inc_by(to_u64(*n));
        }
        self.deletions_failed.inc_by(to_u64(summary.failed));
        self.pass_duration.observe(summary.duration_secs);
        self.images_matched.clear();
        for (policy, n) in &summary.matched_by_policy {
            self.images_matched
                .get_or_create(&label("policy", policy))
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let cache = &summary.build_cache;
        self.build_cache_bytes
            .set(i64::try_from(cache.total_bytes).unwrap_or(i64::MAX));
        for (rule, bytes) in &cache.bytes_by_rule {
            self.build_cache_reclaimed
                .get_or_create(&label("rule", rule))
                .inc_by(*bytes);
        }
        self.last_success.set(unix_secs(finished));
    }

    /// Count a pass that failed as a whole.
    pub fn record_failure(&self, duration_secs: f64) {
        self.passes
            .get_or_create(&label("result", PassResult::Failure.as_str()))
            .inc();
        self.pass_duration.observe(duration_secs);
    }

    pub fn tick_skipped(&self) {
        self.ticks_skipped.inc();
    }

    pub fn set_next_pass(&self, at: Option<DateTime<Utc>>) {
        self.next_pass.set(at.map_or(0.0, unix_secs));
    }

    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.config_reloads
            .get_or_create(&label("result", result))
            .inc();
    }

    /// The `OpenMetrics` text exposition.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[allow(clippy::cast_precision_loss)] // Unix seconds as f64: exact to the microsecond until year 2255.
fn unix_secs(at: DateTime<Utc>) -> f64 {
    at.timestamp_micros() as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        let mut s = Summary {
            deleted: 3,
            failed: 1,
            duration_secs: 0.5,
            ..Summary::default()
        };
        s.deleted_by_policy.insert("builder".into(), 3);
        s.bytes_by_policy.insert("builder".into(), 1000);
        s.matched_by_policy.insert("builder".into(), 5);
        s.kept_by_reason.insert("in_use".into(), 2);
        s.build_cache.total_bytes = 4_200;
        s.build_cache
            .bytes_by_rule
            .insert("stale-cache".into(), 700);
        s
    }

    #[test]
    fn summary_feeds_every_family_with_stagesweep_prefix() {
        let m = Metrics::new();
        let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("ts");
        m.record_summary(&summary(), at);
        m.record_summary(&summary(), at);
        m.record_failure(1.0);
        m.tick_skipped();
        m.config_reload(false);
        m.set_next_pass(Some(at));
        let text = m.encode();
        for line in [
            "stagesweep_passes_total{result=\"partial\"} 2",
            "stagesweep_passes_total{result=\"failure\"} 1",
            "stagesweep_images_deleted_total{policy=\"builder\"} 6",
            "stagesweep_bytes_reclaimed_total{policy=\"builder\"} 2000",
            "stagesweep_images_skipped_total{reason=\"in_use\"} 4",
            "stagesweep_deletions_failed_total 2",
            "stagesweep_pass_duration_seconds_count 3",
            "stagesweep_last_pass_success_timestamp_seconds 1767225600.0",
            "stagesweep_next_pass_timestamp_seconds 1767225600.0",
            "stagesweep_images_matched{policy=\"builder\"} 5",
            "stagesweep_ticks_skipped_total 1",
            "stagesweep_config_reloads_total{result=\"failure\"} 1",
            "stagesweep_build_cache_bytes 4200",
            "stagesweep_build_cache_reclaimed_bytes_total{rule=\"stale-cache\"} 1400",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
