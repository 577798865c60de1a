//! The events worker against the fake engine: live events, replay after a restart of the
//! agent, and a gap after a restart of the daemon.

use std::time::Duration;

use super::*;
use crate::engine::EventKind;
use crate::engine::fake::{FakeEngine, fake_id, image};

const T: i64 = 1_780_000_000; // 2026-05-28

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("in range")
}

fn image_event(action: &str, seed: &str, secs: i64) -> EngineEvent {
    EngineEvent {
        time_nano: secs * 1_000_000_000,
        kind: EventKind::Image,
        action: action.into(),
        actor: fake_id(seed).to_string(),
        image: None,
    }
}

/// Run a session until `until` holds for the history (or 5 s pass), then stop it.
async fn run_until(
    engine: &FakeEngine,
    shared: &Mutex<History>,
    now: i64,
    act: impl AsyncFnOnce(),
    until: impl Fn(&History) -> bool,
) -> Started {
    let stop = CancellationToken::new();
    let mut started = None;
    let session = session(
        engine,
        shared,
        GapPolicy::AssumeUsed,
        || at(now),
        &stop,
        |s| {
            started = Some(s.clone());
        },
    );
    let driver = async {
        // Let the session subscribe and reconcile first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        act().await;
        for _ in 0..500 {
            if until(&lock(shared)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
    };
    let (ended, ()) = tokio::join!(session, driver);
    assert_eq!(ended.expect("session"), Ended::Stopped);
    started.expect("the session started")
}

#[tokio::test]
async fn live_events_record_uses_and_removals() {
    let engine = FakeEngine::builder().image(image("present")).build();
    let shared = Mutex::new(History::first_run());
    let started = run_until(
        &engine,
        &shared,
        T,
        async || {
            engine.add_image(image("loaded"));
            engine.emit(image_event("load", "loaded", T + 5));
            engine.emit(image_event("delete", "present", T + 6));
        },
        |h| h.checkpoint == Some((T + 6) * 1_000_000_000),
    )
    .await;
    assert_eq!(started.reconciled.adopted, 1);
    assert!(!started.gap);
    let h = lock(&shared);
    let loaded = h.images[&fake_id("loaded")];
    assert_eq!(
        (loaded.first_seen, loaded.first_seen_by),
        (T + 5, Source::Event)
    );
    assert!(!h.images.contains_key(&fake_id("present")), "deleted");
}

#[tokio::test]
async fn a_restarted_agent_replays_what_it_missed() {
    let engine = FakeEngine::builder().image(image("a")).build();
    engine.emit(image_event("tag", "a", T));
    let shared = Mutex::new(History::first_run());
    run_until(
        &engine,
        &shared,
        T + 1,
        async || {},
        |h| !h.images.is_empty(),
    )
    .await;
    assert_eq!(lock(&shared).checkpoint, None, "no event arrived live");
    lock(&shared).checkpoint = Some(T * 1_000_000_000);
    // While no agent listens: an image is loaded.
    engine.add_image(image("b"));
    engine.emit(image_event("load", "b", T + 10));
    let started = run_until(&engine, &shared, T + 20, async || {}, |_| true).await;
    assert_eq!((started.replayed, started.gap), (2, false), "{started:?}");
    let b = lock(&shared).images[&fake_id("b")];
    assert_eq!(
        (b.first_seen, b.first_seen_by),
        (T + 10, Source::Event),
        "from the replay"
    );
}

#[tokio::test]
async fn a_restarted_daemon_is_a_gap_and_known_images_count_as_used() {
    let engine = FakeEngine::builder().image(image("a")).build();
    let shared = Mutex::new(History::start_over());
    run_until(
        &engine,
        &shared,
        T,
        async || engine.emit(image_event("tag", "a", T + 1)),
        |h| h.checkpoint.is_some(),
    )
    .await;
    engine.restart_events(); // the daemon's buffer is gone
    let started = run_until(&engine, &shared, T + 100, async || {}, |_| true).await;
    assert!(started.gap, "{started:?}");
    assert_eq!(started.reconciled.gap_used, 1);
    let a = lock(&shared).images[&fake_id("a")];
    assert_eq!((a.last_used, a.last_used_by), (T + 100, Source::Gap));
}

#[tokio::test]
async fn the_session_ends_with_the_stream() {
    let engine = FakeEngine::builder().build();
    let shared = Mutex::new(History::start_over());
    let stop = CancellationToken::new();
    let ending = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        engine.restart_events();
    };
    let (ended, ()) = tokio::join!(
        session(
            &engine,
            &shared,
            GapPolicy::AssumeUsed,
            || at(T),
            &stop,
            |_| {}
        ),
        ending
    );
    assert_eq!(ended.expect("session"), Ended::StreamEnded);
}
