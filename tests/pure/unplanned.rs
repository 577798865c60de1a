//! The window no engine closes: another actor moves or adds a tag between stagesweep's
//! re-check of an image and its `DELETE`. The engine then removes what the plan did not ask
//! for; stagesweep reads that from the engine's answer and reports it loudly (an error log,
//! the JSON report's `unplanned_removals`, the summary line, and a failed run), never
//! silently. Against the in-memory engine, whose hook changes the world right before the
//! `DELETE` is answered.

use crate::support;

use std::time::Duration;

use stagesweep::engine::fake::{Call, FakeEngine, Hook, fake_id, image};
use stagesweep::execute::Outcome;
use stagesweep::pass::PassReport;
use stagesweep::plan::Action;
use stagesweep::report;
use support::passes::{builder_policy, hours, now, outcome_of, pass};

/// A hook that runs `change` once, right before the engine answers `DELETE /images/<name>`.
fn before_delete_of(
    name: String,
    change: impl FnOnce(&mut stagesweep::engine::fake::World) + Send + 'static,
) -> Hook {
    let mut change = Some(change);
    Box::new(move |call, world| {
        if call == Call::Remove(&name)
            && let Some(f) = change.take()
        {
            f(world);
        }
    })
}

/// A hook that runs `change` once, right before the engine answers the `nth` inspect of
/// `id`: the re-check is the second for a tagged image (the first read its tag time for the
/// plan), the first for an untagged one.
fn before_recheck_of(
    id: String,
    nth: usize,
    change: impl FnOnce(&mut stagesweep::engine::fake::World) + Send + 'static,
) -> Hook {
    let mut change = Some(change);
    let mut seen = 0;
    Box::new(move |call, world| {
        if call == Call::Inspect(&id) {
            seen += 1;
            if seen == nth
                && let Some(f) = change.take()
            {
                f(world);
            }
        }
    })
}

fn unplanned_json(r: &PassReport) -> serde_json::Value {
    let doc = serde_json::to_value(report::to_json(r, &report::ALL_ACTIONS)).expect("json");
    doc["unplanned_removals"].clone()
}

#[tokio::test]
async fn a_tag_moved_between_the_recheck_and_its_untag_is_reported_as_unplanned() {
    // X carries two tags, so its extra tag is untagged by name before X goes by ID.
    let engine = FakeEngine::builder()
        .image(
            image("x")
                .tag("app:staging")
                .tag("app:1")
                .label("stage", "builder")
                .age(now(), hours(5)),
        )
        .build();
    let extra = ["app:staging", "app:1"];
    // Whichever of X's tags is untagged by name: right after its own check, CI points it at
    // a fresh image Y that has no other tag. The engine's untag then deletes Y.
    let mut moved = false;
    engine.set_hook(Box::new(move |call, w| {
        if let Call::Remove(name) = call
            && extra.contains(&name)
            && !moved
        {
            moved = true;
            w.images
                .push(image("y").age(now(), Duration::from_secs(1)).build());
            w.tag(fake_id("y"), name);
        }
    }));
    let r = pass(&engine, &builder_policy("b"), false).await;
    assert!(
        engine.image(fake_id("y")).is_none(),
        "the race did not happen"
    );
    assert_eq!(r.summary.unplanned_removals, 1, "{:?}", r.results);
    assert!(
        r.summary.some_failed(),
        "an unplanned removal fails the run"
    );
    let u = &r.results[0].unplanned[0];
    assert!(u.deleted.contains(&fake_id("y").to_string()), "{u:?}");
    assert_eq!(u.while_deleting, fake_id("x").to_string());
    assert!(u.call.starts_with("DELETE /images/app:"), "{u:?}");
    let json = unplanned_json(&r);
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json[0]["while_deleting"], fake_id("x").to_string());
    let text = report::render_text(&r, &[Action::Delete]);
    assert!(text.contains("UNPLANNED REMOVALS 1"), "{text}");
}

#[tokio::test]
async fn a_dangling_image_tagged_between_the_recheck_and_its_delete_is_reported() {
    let engine = FakeEngine::builder()
        .image(image("x").label("stage", "builder").age(now(), hours(5)))
        .build();
    // `docker tag <id> app:keep` lands after the re-check; deleting by ID takes the tag.
    engine.set_hook(before_delete_of(fake_id("x").to_string(), |w| {
        w.tag(fake_id("x"), "app:keep");
    }));
    let r = pass(&engine, &builder_policy("b"), false).await;
    assert_eq!(outcome_of(&r, "x"), &Outcome::Deleted);
    assert_eq!(r.summary.unplanned_removals, 1);
    assert!(r.summary.some_failed());
    let u = &r.results[0].unplanned[0];
    assert_eq!(u.reference.as_deref(), Some("app:keep"));
    assert_eq!(u.call, format!("DELETE /images/{}", fake_id("x")));
    assert_eq!(unplanned_json(&r)[0]["reference"], "app:keep");
}

#[tokio::test]
async fn a_tag_added_before_the_recheck_is_no_race_and_nothing_is_reported() {
    let engine = FakeEngine::builder()
        .image(image("x").label("stage", "builder").age(now(), hours(5)))
        .build();
    // The same tag, one call earlier: the re-check sees it and skips the image.
    engine.set_hook(before_recheck_of(fake_id("x").to_string(), 1, |w| {
        w.tag(fake_id("x"), "app:keep");
    }));
    let r = pass(&engine, &builder_policy("b"), false).await;
    assert!(matches!(outcome_of(&r, "x"), Outcome::Skipped { .. }));
    assert_eq!(r.summary.unplanned_removals, 0);
    assert!(!r.summary.some_failed());
    assert!(unplanned_json(&r).is_null(), "absent when empty");
    assert!(engine.deleted_ids().is_empty());
}

#[tokio::test]
async fn an_image_tagged_again_under_the_same_name_is_skipped() {
    // A rebuild that hits the cache tags the same image again: same reference, newer tag
    // time. It is in use again as far as anyone can tell.
    let engine = FakeEngine::builder()
        .image(
            image("x")
                .tag("app:1")
                .label("stage", "builder")
                .age(now(), hours(5)),
        )
        .build();
    engine.set_hook(before_recheck_of(fake_id("x").to_string(), 2, |w| {
        w.tag(fake_id("x"), "app:1");
    }));
    let r = pass(&engine, &builder_policy("b"), false).await;
    match outcome_of(&r, "x") {
        Outcome::Skipped { reason } => assert!(reason.contains("tagged again"), "{reason}"),
        other => panic!("expected skipped, got {other:?}"),
    }
    assert!(engine.removed_names().is_empty());
}
