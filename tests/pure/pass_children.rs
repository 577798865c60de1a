//! Engines that delete an image other images build on (the containerd image store and
//! Podman; Docker 20.10 and 28.5 on overlay2 answer 409): a child born after the inventory
//! keeps its planned parent, as the daemon's refusal does on overlay2; a child born in the
//! window after the last check is reported loudly. Whole passes on the fake engine in both
//! modes (`deleting_images_with_children`).

use crate::support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use stagesweep::engine::fake::{Call, FakeEngine, FakeEngineBuilder, World, fake_id, image};
use stagesweep::execute::Outcome;
use support::passes::{builder_policy, hours, now, old_builder, outcome_of, pass};

/// p ← c, both `stage=builder` and 5 hours old: c goes in the first wave, p in the second.
fn parent_and_child(b: FakeEngineBuilder) -> FakeEngine {
    b.image(old_builder("p"))
        .image(
            image("c")
                .parent("p")
                .label("stage", "builder")
                .age(now(), hours(5)),
        )
        .build()
}

/// A new image building on `parent`, as a classic build's step on a cached image makes.
fn add_child(w: &mut World, seed: &str, parent: &str) {
    let mut child = image(seed).age(now(), hours(0)).build();
    child.parent_id = Some(fake_id(parent));
    w.images.push(child);
}

/// A hook that adds a child `n` of `p` at the first call `when` matches.
fn child_at(when: impl Fn(Call<'_>) -> bool + Send + 'static) -> stagesweep::engine::fake::Hook {
    let mut done = false;
    Box::new(move |call, w| {
        if !done && when(call) {
            done = true;
            add_child(w, "n", "p");
        }
    })
}

fn is_remove_of(seed: &'static str) -> impl Fn(Call<'_>) -> bool {
    move |call| matches!(call, Call::Remove(name) if name == fake_id(seed).to_string())
}

#[tokio::test]
async fn a_child_born_since_the_inventory_keeps_its_parent_on_every_engine() {
    for deletes_parents_with_children in [false, true] {
        let mut b = FakeEngine::builder();
        if deletes_parents_with_children {
            b = b.deleting_images_with_children();
        }
        let engine = parent_and_child(b);
        // While c is deleted (after the inventory), a build step makes n on p.
        engine.set_hook(child_at(is_remove_of("c")));
        let r = pass(&engine, &builder_policy("b"), false).await;
        assert_eq!(outcome_of(&r, "c"), &Outcome::Deleted);
        let Outcome::Skipped { reason } = outcome_of(&r, "p") else {
            panic!("{:?}", outcome_of(&r, "p"));
        };
        if deletes_parents_with_children {
            // Found by the listing before the wave; the engine was never asked.
            let want = format!(
                "image {} builds on it since the inventory",
                fake_id("n").short()
            );
            assert!(reason.starts_with(&want), "{reason}");
            assert_eq!(engine.removed_names(), [fake_id("c").to_string()]);
        } else {
            assert!(
                reason.contains("image has dependent child images"),
                "{reason}"
            );
        }
        assert!(engine.image(fake_id("p")).is_some(), "the parent stays");
        assert!(engine.image(fake_id("n")).is_some());
    }
}

#[tokio::test]
async fn an_engine_that_refuses_parents_with_children_is_not_listed_again() {
    let engine = parent_and_child(FakeEngine::builder());
    let listings = Arc::new(Mutex::new(0));
    let count = Arc::clone(&listings);
    engine.set_hook(Box::new(move |call, _| {
        if call == Call::ListImages {
            *count.lock().expect("count") += 1;
        }
    }));
    let r = pass(&engine, &builder_policy("b"), false).await;
    assert_eq!(r.summary.deleted, 2);
    assert_eq!(*listings.lock().expect("count"), 1, "the inventory only");

    let engine = parent_and_child(FakeEngine::builder().deleting_images_with_children());
    let listings = Arc::new(Mutex::new(0));
    let count = Arc::clone(&listings);
    engine.set_hook(Box::new(move |call, _| {
        if call == Call::ListImages {
            *count.lock().expect("count") += 1;
        }
    }));
    let r = pass(&engine, &builder_policy("b"), false).await;
    assert_eq!(r.summary.deleted, 2);
    assert_eq!(
        *listings.lock().expect("count"),
        4,
        "the inventory, one before each of the two waves, one after the last"
    );
}

/// Log lines written during a test, through a `tracing` subscriber of its own.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_child_born_after_the_last_check_is_reported_loudly() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::ERROR)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let engine = parent_and_child(FakeEngine::builder().deleting_images_with_children());
    // After the listing of p's wave, right when p is re-checked: the window no API closes.
    engine.set_hook(child_at(
        |call| matches!(call, Call::Inspect(name) if name == fake_id("p").to_string()),
    ));
    let r = pass(&engine, &builder_policy("b"), false).await;
    assert_eq!(
        outcome_of(&r, "p"),
        &Outcome::Deleted,
        "the engine did delete it"
    );
    let text = String::from_utf8(log.0.lock().expect("log").clone()).expect("utf-8");
    assert!(
        text.contains("ERROR")
            && text.contains("the engine deleted an image that another one builds on")
            && text.contains(fake_id("p").short().as_str())
            && text.contains(fake_id("n").short().as_str()),
        "{text}"
    );
}
