//! `apply` checks a reviewed plan again right before its first deletion: its age (it may
//! have waited for the host lock and for builds), and every planned image against the
//! current configuration (protection, the deciding policy and its `min_age`). An image the
//! configuration would now keep is skipped with the reason, and so are its planned parents.

use crate::support;

use std::path::Path;
use std::time::Duration;

use stagesweep::engine::fake::{FakeEngine, fake_id, image};
use stagesweep::execute::Outcome;
use stagesweep::pass::{self, ApplyLimits, PassError, PassOptions, PassReport};
use stagesweep::plan_file::{self, PlanFileError, SavedPlan};
use stagesweep::report;
use support::passes::{builder_policy, config, hours, now, old_builder, pass};
use tokio_util::sync::CancellationToken;

fn saved(r: &PassReport) -> SavedPlan {
    let text =
        serde_json::to_string(&report::to_json(r, &report::ALL_ACTIONS)).expect("serializes");
    plan_file::parse(&text, Path::new("plan.json")).expect("a plan reads back")
}

fn limits(max_age: Duration) -> ApplyLimits {
    ApplyLimits {
        max_age,
        host: "fake engine".to_owned(),
    }
}

/// `apply` of `plan` with `config` (no build coordination).
async fn apply(
    engine: &FakeEngine,
    plan: SavedPlan,
    cfg: &stagesweep::config::Config,
    max_age: Duration,
) -> Result<PassReport, PassError> {
    let opts = PassOptions::default();
    let stop = CancellationToken::new();
    pass::apply(engine, plan, cfg, &limits(max_age), &opts, &stop).await
}

fn outcome<'a>(r: &'a PassReport, seed: &str) -> &'a Outcome {
    let id = fake_id(seed);
    let i = (r.inventory.images.iter())
        .position(|x| x.id == id)
        .unwrap_or_else(|| panic!("{seed} in the plan"));
    &(r.results.iter())
        .find(|x| x.decision == i)
        .expect("a result")
        .outcome
}

#[tokio::test]
async fn an_image_the_current_configuration_protects_is_skipped_with_its_parents() {
    let engine = FakeEngine::builder()
        .image(old_builder("base"))
        .image(old_builder("child").parent("base").label("pin", "yes"))
        .image(old_builder("other"))
        .clock(now())
        .build();
    let plan = saved(&pass(&engine, &builder_policy("b"), true).await);
    assert_eq!(plan.plan.deletions.len(), 3);
    // Between review and apply, the operator protects `pin=yes`.
    let now_protected = config(
        "protect:\n  labels: [pin=yes]\npolicies:\n  - name: b\n    match:\n      labels: [stage=builder]\n    min_age: 1h\n",
    );
    let report = apply(&engine, plan, &now_protected, hours(1))
        .await
        .expect("applies");
    let Outcome::Skipped { reason } = outcome(&report, "child") else {
        panic!("{:?}", outcome(&report, "child"))
    };
    assert!(reason.contains("protect.labels pin=yes"), "{reason}");
    assert!(
        matches!(outcome(&report, "base"), Outcome::Skipped { reason } if reason.contains("its child")),
        "{:?}",
        outcome(&report, "base")
    );
    assert_eq!(outcome(&report, "other"), &Outcome::Deleted);
    assert_eq!(engine.deleted_ids(), vec![fake_id("other")]);
}

#[tokio::test]
async fn a_raised_min_age_or_a_removed_policy_keeps_the_image() {
    let engine = FakeEngine::builder()
        .image(image("a").label("stage", "builder").age(now(), hours(5)))
        .clock(now())
        .build();
    let plan = || async { saved(&pass(&engine, &builder_policy("b"), true).await) };
    let raised = config(
        "policies:\n  - name: b\n    match:\n      labels: [stage=builder]\n    min_age: 6h\n",
    );
    let report = apply(&engine, plan().await, &raised, hours(1))
        .await
        .expect("applies");
    assert!(
        matches!(outcome(&report, "a"), Outcome::Skipped { reason } if reason.contains("min_age 6h")),
        "{:?}",
        outcome(&report, "a")
    );
    let renamed = builder_policy("renamed");
    let report = apply(&engine, plan().await, &renamed, hours(1))
        .await
        .expect("applies");
    assert!(
        matches!(outcome(&report, "a"), Outcome::Skipped { reason } if reason.contains("policy b is not in the configuration")),
        "{:?}",
        outcome(&report, "a")
    );
    assert!(engine.deleted_ids().is_empty());
}

#[tokio::test]
async fn a_plan_that_grew_too_old_while_it_waited_deletes_nothing() {
    // The fake engine's clock says 2 h after the plan was made, as after a long lock wait.
    let planning = FakeEngine::builder().image(old_builder("a")).build();
    let plan = saved(&pass(&planning, &builder_policy("b"), true).await);
    let later = FakeEngine::builder()
        .image(old_builder("a"))
        .clock(now() + chrono::Duration::hours(2))
        .build();
    let err = apply(&later, plan, &builder_policy("b"), hours(1))
        .await
        .expect_err("too old by now");
    assert!(
        matches!(err, PassError::PlanFile(PlanFileError::TooOld { .. })),
        "{err:?}"
    );
    assert!(later.deleted_ids().is_empty());
}
