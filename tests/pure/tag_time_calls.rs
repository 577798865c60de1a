//! Only the calls that can change a decision: a pass inspects an image for its tag time only
//! when the answer can change its fate (a tagged image it would delete, an image of unknown
//! age), never one already kept for another reason (in use, younger than `min_age` by its
//! `Created`, which a tag time can only make younger); and the re-check before each DELETE
//! stays, one per deletion. (`/images/json` carries no `LastTagTime` on any API version up
//! to 1.53, so the inspect cannot be replaced by the listing.)

use crate::support;

use std::sync::{Arc, Mutex};

use stagesweep::engine::fake::{Call, FakeEngine, container, fake_id, image};
use support::passes::{builder_policy, hours, now, old_builder, pass};

/// The fake engine with its inspects recorded (by name, in call order).
fn recorded() -> (FakeEngine, Arc<Mutex<Vec<String>>>) {
    let young = image("young")
        .tag("app:young")
        .label("stage", "builder")
        .age(
            now(),
            chrono::Duration::minutes(10).to_std().expect("positive"),
        );
    let engine = FakeEngine::builder()
        .image(old_builder("used").tag("app:used"))
        .container(container("ctr", "used", "running"))
        .image(young)
        .image(old_builder("old").tag("app:old"))
        .image(old_builder("untagged"))
        .image(image("unrelated").tag("other:1").age(now(), hours(500)))
        .build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    engine.set_hook(Box::new(move |call, _world| {
        if let Call::Inspect(name) = call {
            log.lock().expect("not poisoned").push(name.to_owned());
        }
    }));
    (engine, seen)
}

fn inspected(seen: &Mutex<Vec<String>>) -> Vec<String> {
    let mut names = seen.lock().expect("not poisoned").clone();
    names.sort();
    names
}

#[tokio::test]
async fn a_plan_inspects_only_the_tagged_images_it_would_delete() {
    let (engine, seen) = recorded();
    let r = pass(&engine, &builder_policy("b"), true).await;
    assert_eq!(r.plan.deletions.len(), 2, "old and untagged");
    assert_eq!(inspected(&seen), [fake_id("old").to_string()]);
}

#[tokio::test]
async fn a_prune_adds_one_recheck_per_deletion_and_nothing_else() {
    let (engine, seen) = recorded();
    pass(&engine, &builder_policy("b"), false).await;
    let old = fake_id("old").to_string();
    let mut expected = vec![old.clone(), old, fake_id("untagged").to_string()];
    expected.sort();
    assert_eq!(inspected(&seen), expected);
    assert_eq!(engine.removed_names().len(), 2);
}
