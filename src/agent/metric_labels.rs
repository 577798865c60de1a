//! The label sets and value helpers of the agent's metrics: how a pass ended
//! ([`PassResult`]), why a tick was skipped ([`SkipReason`]), and gauges that can be absent.

use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// One label, e.g. `[("policy", "builder-stages")]`.
pub(super) type Label = [(&'static str, String); 1];
/// A gauge with no labels that can be absent.
pub type OptionalGauge = Family<[(&'static str, String); 0], Gauge<f64, AtomicU64>>;

pub(super) fn label(key: &'static str, value: &str) -> Label {
    [(key, value.to_owned())]
}

/// Set an [`OptionalGauge`], or remove its sample so that the metric has no value.
pub(super) fn set_optional(gauge: &OptionalGauge, value: Option<f64>) {
    match value {
        Some(v) => {
            gauge.get_or_create(&[]).set(v);
        }
        None => gauge.clear(),
    }
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
    pub(super) const ALL: [PassResult; 3] = [
        PassResult::Success,
        PassResult::Partial,
        PassResult::Failure,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            PassResult::Success => "success",
            PassResult::Partial => "partial",
            PassResult::Failure => "failure",
        }
    }
}

/// Why a tick was skipped (the `reason` label of `ticks_skipped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The previous pass was still running.
    PassRunning,
    /// Docker did not answer.
    DockerUnreachable,
}

impl SkipReason {
    pub const ALL: [SkipReason; 2] = [SkipReason::PassRunning, SkipReason::DockerUnreachable];

    /// The metric label value.
    #[must_use]
    pub fn as_label(self) -> &'static str {
        match self {
            SkipReason::PassRunning => "pass_running",
            SkipReason::DockerUnreachable => "docker_unreachable",
        }
    }

    /// The words in the log line.
    #[must_use]
    pub fn text(self) -> &'static str {
        match self {
            SkipReason::PassRunning => "a pass is still running",
            SkipReason::DockerUnreachable => "docker is unreachable",
        }
    }
}

/// Replace a gauge family's values with `counts` (label values absent from it disappear).
pub(super) fn set_gauges(
    family: &Family<Label, Gauge>,
    key: &'static str,
    counts: &std::collections::BTreeMap<String, usize>,
) {
    family.clear();
    for (value, n) in counts {
        family
            .get_or_create(&label(key, value))
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
}

pub(super) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[allow(clippy::cast_precision_loss)] // Unix seconds as f64: exact to the microsecond until year 2255.
pub(super) fn unix_secs(at: DateTime<Utc>) -> f64 {
    at.timestamp_micros() as f64 / 1e6
}
