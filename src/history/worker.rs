//! The agent's events worker: one [`session`] per connection to the engine.
//!
//! A session subscribes first (replaying from just before the checkpoint, then live), asks
//! for the daemon's buffer up to now to apply what happened while nobody listened and to
//! detect a gap (the checkpoint event is no longer buffered: more than 256 events since, or
//! the daemon restarted), reconciles with the engine's listing, then follows live events
//! until the stream ends (daemon shutdown: the caller reconnects).
//!
//! Events go from the stream through a bounded channel to the worker, so a slow lookup never
//! makes the daemon drop the subscriber (it does after 100 ms of lag); when the channel is
//! full, events are lost and a gap is recorded instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::events::{Observation, counts, observe, secs};
use super::reconcile::{Reconciled, reconcile};
use super::{History, Source};
use crate::config::GapPolicy;
use crate::engine::{Engine, EngineError, EngineEvent};
use crate::inventory::ImageId;

/// Events waiting for the worker.
const CHANNEL: usize = 1024;
/// On a remote engine, a session that hears nothing for this long subscribes again: a
/// half-open connection must not leave the history silent for ever (the replay since the
/// checkpoint then covers, or detects as a gap, what it missed).
pub const REMOTE_IDLE: std::time::Duration = std::time::Duration::from_secs(300);
/// Replays start this long before the checkpoint (the engine's `since` is not exact).
const REPLAY_MARGIN_NANOS: i64 = 1_000_000_000;

/// The history shared by the events worker, the passes and the writer.
pub type Shared = Arc<Mutex<History>>;

/// Lock the shared history.
pub fn lock(shared: &Mutex<History>) -> MutexGuard<'_, History> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The event stream ended (the daemon went away): reconnect.
    StreamEnded,
    /// A remote engine sent nothing for [`REMOTE_IDLE`]: subscribe again.
    Idle,
    /// Stop was requested.
    Stopped,
}

/// What the start of a session found, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub replayed: usize,
    pub gap: bool,
    pub reconciled: Reconciled,
}

/// One session with `engine`; see the module doc. `on_start` is told what the replay found.
///
/// Every time of the session is on the engine's clock (the one that stamps events and
/// images): `now` is the host's clock, and the engine's offset from it is measured once, at
/// the start, from `/info`. A checkpoint ahead of the engine's clock (the engine's clock
/// stepped back) is a gap, and so is an event older than the checkpoint while following
/// live: the history is never silently blind to what happened.
pub async fn session<E: Engine>(
    engine: &E,
    history: &Mutex<History>,
    gap_policy: GapPolicy,
    now: impl Fn() -> DateTime<Utc>,
    stop: &CancellationToken,
    on_start: impl FnOnce(&Started),
) -> Result<Ended, EngineError> {
    let info = engine.info().await?;
    let offset = info
        .system_time
        .map_or_else(chrono::Duration::zero, |t| t - now());
    let engine_now = || now() + offset;
    let started_at = nanos(engine_now());
    let mut stepped_back = false;
    let checkpoint = {
        let mut h = lock(history);
        if h.checkpoint
            .is_some_and(|c| c > started_at + REPLAY_MARGIN_NANOS)
        {
            tracing::warn!(
                "the engine's clock is behind the history's checkpoint (it stepped back): counted as a gap"
            );
            h.rewind(started_at);
            stepped_back = true;
        }
        h.checkpoint
    };
    let since = checkpoint.map(|c| c - REPLAY_MARGIN_NANOS);
    let (tx, mut rx) = mpsc::channel(CHANNEL);
    let lost = Arc::new(AtomicBool::new(false));
    let forwarder = tokio::spawn(forward(engine.events(since, None), tx, Arc::clone(&lost)));
    let _abort = AbortOnDrop(forwarder);

    let until = nanos(engine_now());
    let mut replay: Vec<EngineEvent> = Vec::new();
    if let Some(since) = since.filter(|s| *s <= until) {
        let mut s = engine.events(Some(since), Some(until));
        while let Some(e) = s.next().await {
            replay.push(e?);
        }
    }
    // The checkpoint event is still buffered, or events were lost since.
    let gap = stepped_back || checkpoint.is_some_and(|c| !replay.iter().any(|e| e.time_nano <= c));
    for e in &replay {
        apply(engine, history, e).await?;
    }
    let reconciled = {
        // The listing is dropped here, before the session follows events for as long as the
        // agent runs (10 000 images hold megabytes).
        let (images, containers) =
            tokio::try_join!(engine.list_images(), engine.list_containers())?;
        let at = engine_now();
        let mut h = lock(history);
        let pending = h.pending_gap.take();
        let gap_end = if gap { Some(at) } else { pending };
        reconcile(
            &mut h,
            &images,
            &containers,
            &info.id,
            at,
            gap_end,
            gap_policy,
        )
    };
    if reconciled.clamped > 0 {
        tracing::warn!(
            records = reconciled.clamped,
            "history times in the future of the engine's clock were set to now"
        );
    }
    on_start(&Started {
        replayed: replay.len(),
        gap,
        reconciled,
    });
    let idle = engine.is_remote().then_some(REMOTE_IDLE);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return Ok(Ended::Stopped),
            e = rx.recv() => e,
            () = sleep_or_never(idle) => return Ok(Ended::Idle),
        };
        let Some(event) = event else {
            return Ok(Ended::StreamEnded);
        };
        let event = event?;
        let behind = lock(history)
            .checkpoint
            .is_some_and(|c| event.time_nano < c - REPLAY_MARGIN_NANOS);
        if behind {
            // A live event older than the checkpoint: the engine's clock stepped back. Its
            // events would be dropped as already seen; take them, and count a gap.
            tracing::warn!(
                "an event is older than the history's checkpoint (the engine's clock stepped back): counted as a gap"
            );
            let mut h = lock(history);
            h.rewind(event.time_nano - 1);
            h.pending_gap = Some(engine_now());
        }
        apply(engine, history, &event).await?;
        if lost.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "events came faster than they could be recorded; some were lost (counted as a gap)"
            );
            lock(history).pending_gap = Some(engine_now());
        }
    }
}

/// Sleep `d`, or for ever without one.
async fn sleep_or_never(d: Option<std::time::Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Nanoseconds since the epoch (saturating far outside any real clock).
fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Move events from the stream to the channel without ever waiting on the worker.
async fn forward(
    mut events: crate::engine::EventStream,
    tx: mpsc::Sender<Result<EngineEvent, EngineError>>,
    lost: Arc<AtomicBool>,
) {
    while let Some(item) = events.next().await {
        match tx.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => lost.store(true, Ordering::Relaxed),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Apply one event that the history has not seen yet (newer than the checkpoint).
async fn apply<E: Engine>(
    engine: &E,
    history: &Mutex<History>,
    e: &EngineEvent,
) -> Result<(), EngineError> {
    if lock(history).checkpoint.is_some_and(|c| e.time_nano <= c) {
        return Ok(());
    }
    let change = match observe(e) {
        Observation::Used(name) => resolve(engine, name).await?.map(|id| (id, true)),
        Observation::Removed(name) => name.parse::<ImageId>().ok().map(|id| (id, false)),
        Observation::Nothing => None,
    };
    let mut h = lock(history);
    match change {
        Some((id, true)) if counts(e) => h.used_counted(id, secs(e.time_nano)),
        Some((id, true)) => h.used(id, secs(e.time_nano), Source::Event),
        Some((id, false)) => h.removed(id),
        None => {}
    }
    h.advance(e.time_nano);
    Ok(())
}

/// The image ID a name (ID or reference) stands for now; `None` when it is gone.
async fn resolve<E: Engine>(engine: &E, name: &str) -> Result<Option<ImageId>, EngineError> {
    if let Ok(id) = name.parse() {
        return Ok(Some(id));
    }
    match engine.inspect_image(name).await {
        Ok(state) => Ok(Some(state.id)),
        Err(EngineError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
