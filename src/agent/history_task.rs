//! The agent's history tasks: the events worker that keeps the history current
//! (reconnecting with backoff when the engine's stream ends) and the writer (at most every
//! 10 s, and once more at shutdown). What the events mean is `history::worker`'s; passes
//! borrow the history ([`crate::pass::HistoryUse::Shared`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backend::{CatchUp, Connector};
use super::clock::Backoff;
use super::telemetry::Telemetry;
use crate::config::{Config, HistoryConfig};
use crate::history::worker::{Ended, Shared, Started, lock, session};
use crate::history::{file, store};

/// How often the history is written when it changed.
pub const WRITE_EVERY: Duration = Duration::from_secs(10);

/// Keep the history following the engine's events, session after session. `caught_up` (and
/// the telemetry) say whether it does: true once a session replayed what it missed and
/// reconciled, false from the moment a session ends or cannot start.
pub(super) async fn follow_events<C: Connector>(
    connector: C,
    config: watch::Receiver<Arc<Config>>,
    history: Shared,
    caught_up: watch::Sender<CatchUp>,
    telemetry: Arc<Telemetry>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        let cfg = Arc::clone(&config.borrow());
        let ended = match connector.connect(&cfg.docker).await {
            Ok(engine) => {
                let gap_policy = cfg.history.gap_policy;
                let started = |s: &Started| {
                    let r = &s.reconciled;
                    tracing::info!(
                        replayed = s.replayed,
                        gap = s.gap,
                        adopted = r.adopted,
                        new = r.new,
                        gap_used = r.gap_used,
                        "following docker events"
                    );
                    set(&caught_up, true);
                    telemetry.history_caught_up(true, Utc::now());
                };
                let result = session(&engine, &history, gap_policy, Utc::now, &stop, started).await;
                if result.is_ok() {
                    backoff.reset();
                }
                result
            }
            Err(e) => Err(e),
        };
        if !matches!(ended, Ok(Ended::Stopped)) {
            set(&caught_up, false);
            telemetry.history_caught_up(false, Utc::now());
        }
        match ended {
            Ok(Ended::Stopped) => return,
            Ok(Ended::StreamEnded) => tracing::info!("docker's event stream ended; reconnecting"),
            Ok(Ended::Idle) => tracing::debug!(
                "no event from the remote engine for 5m: subscribing again (a half-open connection stays silent)"
            ),
            Err(e) => tracing::debug!(error = %e, "cannot follow docker events; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Say whether the history follows the events; `since` moves only when that changes.
fn set(caught_up: &watch::Sender<CatchUp>, now_following: bool) {
    caught_up.send_if_modified(|s| {
        let changed = s.caught_up != now_following;
        if changed {
            *s = CatchUp {
                caught_up: now_following,
                since: tokio::time::Instant::now(),
            };
        }
        changed
    });
}

pub(super) async fn write_history(history: Shared, config: HistoryConfig, stop: CancellationToken) {
    let mut every = tokio::time::interval(WRITE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = every.tick() => failing = save(&history, &config, failing).await,
        }
    }
    save(&history, &config, failing).await;
}

/// Write the history, merged with what the file holds now (another writer, `prune`, may
/// have recorded images meanwhile), under the state lock; on failure it stays dirty for the
/// next try. Returns whether writing fails (warned about once, until it works again). The
/// file is read and written on a blocking thread; the merge and the file's bytes are made
/// here, so that thread allocates next to nothing and its memory arena stays small.
async fn save(history: &Shared, config: &HistoryConfig, failing: bool) -> bool {
    if !lock(history).dirty {
        return failing;
    }
    let path = config.path.clone();
    let read_path = path.clone();
    let begun = tokio::task::spawn_blocking(move || store::begin_save(&read_path, true)).await;
    let written = match begun {
        Ok(Ok((state_lock, current))) => {
            let bytes = {
                let mut h = lock(history);
                store::merge_current(&mut h, current.as_deref(), &path);
                // The file's old bytes go before the new ones are made.
                drop(current);
                h.dirty = false;
                file::to_bytes(&h)
            };
            tokio::task::spawn_blocking(move || {
                let written = file::write(&path, &bytes);
                drop(state_lock);
                written
            })
            .await
        }
        Ok(Err(e)) => Ok(Err(e)),
        Err(e) => Err(e),
    };
    match written {
        Ok(Ok(())) => {
            if failing {
                tracing::info!("history written again");
            }
            false
        }
        Ok(Err(e)) => {
            lock(history).dirty = true;
            if failing {
                tracing::debug!(error = %e, "history still not written");
            } else {
                tracing::warn!(error = %e, "history not written; it is kept in memory and retried every 10s");
            }
            true
        }
        Err(_) => {
            lock(history).dirty = true;
            true
        }
    }
}
