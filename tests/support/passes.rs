//! Whole passes of the library, on the in-memory engine (`engine::fake`, whose clock is
//! [`now`]) or on a real one: test configs, the usual builder images and cache records, a pass
//! and what it did to one image.

use std::time::Duration;

use chrono::{DateTime, Utc};
use stagesweep::config::{self, Config};
use stagesweep::engine::Engine;
use stagesweep::engine::fake::{FakeEngine, ImageBuilder, fake_id, image};
use stagesweep::execute::Outcome;
use stagesweep::inventory::{CacheRecord, CacheType};
use stagesweep::pass::{PassOptions, PassReport, run_pass};
use stagesweep::plan::Decision;
use tokio_util::sync::CancellationToken;

/// The fixed "now" of passes on the fake engine (June 2025).
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).expect("valid")
}

pub fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

/// A configuration from YAML; panics with the text and the problems when it is invalid.
pub fn config(yaml: &str) -> Config {
    config::parse_str(yaml, "test.yaml").unwrap_or_else(|e| panic!("test config:\n{yaml}\n{e}"))
}

/// One policy named `name` (it shows in explanations): `stage=builder` images older than 1h.
pub fn builder_policy(name: &str) -> Config {
    config(&format!(
        "policies:\n  - name: {name}\n    match:\n      labels: [stage=builder]\n    min_age: 1h\n"
    ))
}

/// A `stage=builder` image 5 hours old at [`now`].
pub fn old_builder(seed: &str) -> ImageBuilder {
    image(seed).label("stage", "builder").age(now(), hours(5))
}

/// A regular build cache record `id` of `size` bytes, created 30 days before [`now`] and
/// last used `idle_days` before it (twice in all).
pub fn cache_record(id: &str, idle_days: i64, size: u64) -> CacheRecord {
    let now = now();
    CacheRecord {
        id: id.to_owned(),
        parents: Vec::new(),
        kind: CacheType::Regular,
        description: format!("mount / from exec /bin/sh -c make {id}"),
        size,
        created: Some(now - chrono::Duration::days(30)),
        last_used: Some(now - chrono::Duration::days(idle_days)),
        usage_count: 2,
        shared: false,
        in_use: false,
    }
}

/// A pass (a dry run or not) on the fake engine at [`now`].
pub async fn pass(engine: &FakeEngine, cfg: &Config, dry_run: bool) -> PassReport {
    pass_at(engine, cfg, now(), dry_run).await
}

/// A pass (a dry run or not) on a real engine, at the host's now.
pub async fn pass_now<E: Engine>(engine: &E, cfg: &Config, dry_run: bool) -> PassReport {
    pass_at(engine, cfg, Utc::now(), dry_run).await
}

/// A pass (a dry run or not) on any engine at `now`; panics when it cannot read the inventory.
pub async fn pass_at<E: Engine>(
    engine: &E,
    cfg: &Config,
    now: DateTime<Utc>,
    dry_run: bool,
) -> PassReport {
    let opts = PassOptions {
        dry_run,
        ..PassOptions::default()
    };
    run_pass(engine, cfg, now, &opts, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("the pass reads the inventory: {e}"))
}

/// What the pass did to the fake image `seed` (which it planned to delete).
pub fn outcome_of<'a>(r: &'a PassReport, seed: &str) -> &'a Outcome {
    let id = fake_id(seed);
    let i = (r.plan.decisions.iter())
        .position(|d| r.image(d).id == id)
        .expect("in plan");
    &(r.results.iter().find(|x| x.decision == i))
        .expect("planned")
        .outcome
}

/// The decision about image `id` (as the engine gave it).
pub fn decision<'a>(report: &'a PassReport, id: &str) -> &'a Decision {
    report
        .decision_for(id.parse().expect("the engine gave a valid ID"))
        .unwrap_or_else(|| panic!("no decision for {id}"))
}
