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

/// A history that knows `a` (used at `used`) and has seen events up to `checkpoint` (secs).
fn known(used: i64, checkpoint: i64) -> History {
    let mut h = History::start_over();
    h.engine_id = crate::engine::fake::FAKE_ENGINE_ID.to_owned();
    h.used(fake_id("a"), used, Source::Event);
    h.checkpoint = Some(checkpoint * 1_000_000_000);
    h
}

#[tokio::test]
async fn an_engine_clock_ahead_of_the_host_stamps_and_replays_on_its_own_clock() {
    // The engine is an hour ahead of this host; the checkpoint is on its clock. Asking for
    // a replay until the host's "now" would ask for `since` after `until` (a 400 for ever).
    let engine = FakeEngine::builder()
        .image(image("a"))
        .clock(at(T + 3600))
        .build();
    engine.emit(image_event("tag", "a", T + 3500));
    engine.add_image(image("new"));
    let shared = Mutex::new(known(T + 3000, T + 3500));
    let started = run_until(&engine, &shared, T, async || {}, |_| true).await;
    assert!(!started.gap, "{started:?}");
    let new = lock(&shared).images[&fake_id("new")];
    assert_eq!(new.first_seen, T + 3600, "first seen on the engine's clock");
}

#[tokio::test]
async fn an_engine_clock_behind_the_host_gives_first_seen_on_its_own_clock() {
    // The host is an hour ahead: first_seen at the host's now would be an hour in the
    // engine's future, and min_age would count from there.
    let engine = FakeEngine::builder()
        .image(image("new"))
        .clock(at(T))
        .build();
    let shared = Mutex::new(History::start_over());
    run_until(&engine, &shared, T + 3600, async || {}, |_| true).await;
    let new = lock(&shared).images[&fake_id("new")];
    assert_eq!((new.first_seen, new.first_seen_by), (T, Source::Listing));
}

#[tokio::test]
async fn an_engine_clock_that_stepped_back_is_a_gap_and_its_events_are_taken() {
    // The checkpoint says T + 1000 (the engine's clock before it stepped back to T): the
    // engine's new events carry older times, and would be dropped as already seen.
    let engine = FakeEngine::builder()
        .image(image("a"))
        .image(image("b"))
        .clock(at(T))
        .build();
    let shared = Mutex::new(known(T - 100, T + 1000));
    let started = run_until(
        &engine,
        &shared,
        T,
        async || engine.emit(image_event("tag", "b", T + 5)),
        |h| {
            h.images
                .get(&fake_id("b"))
                .is_some_and(|r| r.last_used == T + 5)
        },
    )
    .await;
    assert!(started.gap, "a step back is a gap: {started:?}");
    let h = lock(&shared);
    assert_eq!(h.images[&fake_id("b")].last_used_by, Source::Event, "taken");
    assert_eq!(
        h.images[&fake_id("a")].last_used_by,
        Source::Gap,
        "assume_used"
    );
    assert!(h.checkpoint.is_some_and(|c| c <= (T + 5) * 1_000_000_000));
}

#[tokio::test]
async fn times_in_the_future_are_set_to_now_and_never_pinned() {
    let engine = FakeEngine::builder().image(image("a")).clock(at(T)).build();
    let shared = Mutex::new(known(T + 86_400, T - 10));
    lock(&shared).checkpoint = None;
    let started = run_until(&engine, &shared, T, async || {}, |_| true).await;
    assert_eq!(started.reconciled.clamped, 1);
    let a = lock(&shared).images[&fake_id("a")];
    assert_eq!((a.first_seen, a.last_used), (T, T));
}
