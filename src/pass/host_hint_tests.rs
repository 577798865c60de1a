use std::sync::Arc;

use super::*;
use crate::execute::{CacheOutcome, CacheResult, summarize_build_cache};
use crate::inventory::CacheRecord;
use crate::plan::Action;
use crate::plan::build_cache::{CacheDecision, CachePlan, CacheReason};

fn left(left_bytes: u64, left_shared_bytes: u64) -> CacheSummary {
    CacheSummary {
        left_bytes,
        left_shared_bytes,
        ..CacheSummary::default()
    }
}

#[test]
fn speaks_only_when_images_matched_nothing_and_the_cache_left_is_large() {
    let big = left(HINT_THRESHOLD_BYTES + 1, 0);
    assert_eq!(host_needs(1, &big, 0), None, "policies matched images");
    assert_eq!(
        host_needs(0, &left(HINT_THRESHOLD_BYTES, 0), 0),
        None,
        "small cache"
    );
    let listed_before_the_prune = CacheSummary {
        total_bytes: 9_000_000_000,
        ..left(HINT_THRESHOLD_BYTES, 0)
    };
    assert_eq!(
        host_needs(0, &listed_before_the_prune, 0),
        None,
        "what the pass deleted does not count"
    );
    let add = host_needs(0, &left(4_200_000_000, 1_100_000_000), 0).expect("a line");
    // As the README's "Classic builder or BuildKit?" shows it.
    assert_eq!(
        add,
        "the image policies matched no image, but the engine holds 4.2 GB of build cache \
         (1.1 GB shared with images, 3.1 GB not): this host builds with BuildKit, which leaves \
         build cache instead of builder-stage images; add build_cache: rules to manage it \
         (README: Classic builder or BuildKit?)"
    );
    let managed = host_needs(0, &big, 1).expect("a line");
    assert!(
        managed.contains("the build_cache: rules manage it"),
        "{managed}"
    );
}

fn record(id: &str, size: u64, shared: bool) -> CacheRecord {
    CacheRecord {
        shared,
        ..crate::engine::fake::cache_record(id, size)
    }
}

fn decision(record: usize) -> CacheDecision {
    CacheDecision {
        record,
        action: Action::Delete,
        rule: Some(Arc::from("r")),
        reason: CacheReason::UnusedFor {
            rule: Arc::from("r"),
            idle_secs: 10,
            unused_for_secs: 1,
        },
    }
}

fn result(decision: usize, outcome: CacheOutcome, bytes: u64) -> CacheResult {
    CacheResult {
        decision,
        outcome,
        bytes,
    }
}

#[test]
fn what_is_left_is_the_listing_less_what_the_engine_deleted() {
    let records = [
        record("a", 300, false),
        record("b", 200, true),
        record("c", 50, false),
        record("d", 7, true),
    ];
    let plan = CachePlan {
        decisions: (0..records.len()).map(decision).collect(),
        total_bytes: 557,
        ..CachePlan::default()
    };
    let dry = summarize_build_cache(&records, &plan, &[], None);
    assert_eq!((dry.left_bytes, dry.left_shared_bytes), (557, 207));
    let results = [
        result(0, CacheOutcome::Deleted, 300),
        result(3, CacheOutcome::Deleted, 7),
        result(
            2,
            CacheOutcome::Failed {
                error: "busy".into(),
            },
            0,
        ),
        result(1, CacheOutcome::NotAttempted, 0),
    ];
    let done = summarize_build_cache(&records, &plan, &results, None);
    assert_eq!((done.left_bytes, done.left_shared_bytes), (250, 200));
    assert_eq!(
        done.total_bytes, 557,
        "the listing's figure stays as listed"
    );
}
