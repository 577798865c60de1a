//! `/system/df` never blocks a pass: once the listings are in, the data usage gets
//! `pass::data_usage::GRACE` more; an engine that takes longer leaves the pass with estimates
//! and a notice, and the images are still planned and deleted. Paused test time: an hour of
//! engine silence costs nothing.

use crate::support;

use std::time::Duration;

use stagesweep::engine::fake::FakeEngine;
use stagesweep::execute::Outcome;
use stagesweep::pass::data_usage::GRACE;
use support::passes::{builder_policy, cache_record, old_builder, outcome_of, pass};

fn engine(data_usage_takes: Duration) -> FakeEngine {
    FakeEngine::builder()
        .image(old_builder("a"))
        .cache_record(cache_record("r1", 40, 1000))
        .slow_data_usage(data_usage_takes)
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_data_usage_that_hangs_degrades_to_estimates_with_a_notice() {
    let engine = engine(Duration::from_secs(3600));
    let started = tokio::time::Instant::now();
    let report = pass(&engine, &builder_policy("builders"), false).await;
    let waited = started.elapsed();
    assert!(
        waited <= GRACE + Duration::from_secs(1),
        "the pass waited {waited:?} for the data usage; at most {GRACE:?}"
    );
    let notice = report.cache.notice.as_deref().unwrap_or_default();
    assert!(
        notice.contains("disk usage could not be read")
            && notice.contains(&format!("no answer within {}s", GRACE.as_secs())),
        "{notice:?}"
    );
    assert_eq!(
        report.inventory.build_cache, None,
        "no records from a late answer"
    );
    assert_eq!(
        *outcome_of(&report, "a"),
        Outcome::Deleted,
        "the pass goes on"
    );
}

#[tokio::test(start_paused = true)]
async fn a_data_usage_within_the_grace_is_used() {
    let engine = engine(GRACE / 2);
    let report = pass(&engine, &builder_policy("builders"), true).await;
    assert_eq!(report.cache.notice, None);
    let records = report.inventory.build_cache.as_deref().unwrap_or_default();
    assert_eq!(records.len(), 1, "the build cache records were read");
}
