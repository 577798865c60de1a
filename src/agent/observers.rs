//! The agent's tasks beside the schedule: the events worker that keeps the history current
//! (reconnecting with backoff when the engine's stream ends), the history writer (at most
//! every 10 s, and once more at shutdown) and the disk checker (`disk.check_every`), which
//! wakes the loop for an early pass when the disk is at or over `high`.
//!
//! Wiring only: what the events mean is `history::worker`'s, what gets deleted the planner's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::backend::Connector;
use super::clock::Backoff;
use super::telemetry::Telemetry;
use crate::config::{Config, HistoryConfig, Measure};
use crate::engine::Engine as _;
use crate::history::file;
use crate::history::store::{self, Opener};
use crate::history::worker::{Ended, Shared, lock, session};
use crate::inventory::Inventory;
use crate::observe;

/// How often the history is written when it changed.
pub const WRITE_EVERY: Duration = Duration::from_secs(10);

/// The running tasks.
pub struct Observers {
    history: Option<(Shared, HistoryConfig)>,
    /// True once the events worker replayed and reconciled for the first time.
    synced: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    stop: CancellationToken,
}

/// Start the tasks the configuration asks for. `wake` is notified when the disk needs an
/// early pass.
pub fn start<C: Connector + Clone + 'static>(
    config: &watch::Receiver<Arc<Config>>,
    connector: &C,
    telemetry: &Arc<Telemetry>,
    wake: &Arc<Notify>,
) -> Observers {
    let stop = CancellationToken::new();
    let current = Arc::clone(&config.borrow());
    let mut tasks = Vec::new();
    let mut writer = None;
    let (synced_tx, synced) = watch::channel(false);
    let history = store::open(&current.history, Opener::Agent).map(|h| {
        let shared: Shared = Arc::new(Mutex::new(h));
        tasks.push(tokio::spawn(follow_events(
            connector.clone(),
            config.clone(),
            Arc::clone(&shared),
            synced_tx,
            stop.clone(),
        )));
        writer = Some(tokio::spawn(write_history(
            Arc::clone(&shared),
            current.history.clone(),
            stop.clone(),
        )));
        (shared, current.history.clone())
    });
    tasks.push(tokio::spawn(check_disk(
        connector.clone(),
        config.clone(),
        Arc::clone(telemetry),
        Arc::clone(wake),
        stop.clone(),
    )));
    Observers {
        history,
        synced,
        tasks,
        writer,
        stop,
    }
}

impl Observers {
    /// The shared history, when it is kept.
    #[must_use]
    pub fn history(&self) -> Option<Shared> {
        self.history.as_ref().map(|(h, _)| Arc::clone(h))
    }

    /// Wait (at most `limit`) until the events worker has replayed what it missed and
    /// reconciled, so that the first pass sees what the events say (not only the listing).
    pub async fn wait_synced(&self, limit: Duration) {
        if self.history.is_none() {
            return;
        }
        let mut synced = self.synced.clone();
        let _ = tokio::time::timeout(limit, synced.wait_for(|s| *s)).await;
    }

    /// Stop the tasks and write the history one last time.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(w) = self.writer {
            let _ = w.await;
        }
    }
}

async fn follow_events<C: Connector>(
    connector: C,
    config: watch::Receiver<Arc<Config>>,
    history: Shared,
    synced: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        let cfg = Arc::clone(&config.borrow());
        let ended = match connector.connect(&cfg.docker).await {
            Ok(engine) => {
                let gap_policy = cfg.history.gap_policy;
                let started = |s: &crate::history::worker::Started| {
                    let r = &s.reconciled;
                    tracing::info!(
                        replayed = s.replayed,
                        gap = s.gap,
                        adopted = r.adopted,
                        new = r.new,
                        gap_used = r.gap_used,
                        "following docker events"
                    );
                    synced.send_replace(true);
                };
                let result = session(&engine, &history, gap_policy, Utc::now, &stop, started).await;
                if result.is_ok() {
                    backoff.reset();
                }
                result
            }
            Err(e) => Err(e),
        };
        match ended {
            Ok(Ended::Stopped) => return,
            Ok(Ended::StreamEnded) => tracing::info!("docker's event stream ended; reconnecting"),
            Err(e) => tracing::debug!(error = %e, "cannot follow docker events; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

async fn write_history(history: Shared, config: HistoryConfig, stop: CancellationToken) {
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

/// Write the history off the runtime's thread; on failure it stays dirty for the next try.
/// Returns whether writing fails (warned about once, until it works again). The file's bytes
/// are made here, and only they cross to the blocking thread: that thread allocates next
/// to nothing, so its memory arena stays small.
async fn save(history: &Shared, config: &HistoryConfig, failing: bool) -> bool {
    let bytes = {
        let mut h = lock(history);
        if !h.dirty {
            return failing;
        }
        h.dirty = false;
        file::to_bytes(&h)
    };
    let path = config.path.clone();
    let written = tokio::task::spawn_blocking(move || file::write(&path, &bytes, true)).await;
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

async fn check_disk<C: Connector>(
    connector: C,
    mut config: watch::Receiver<Arc<Config>>,
    telemetry: Arc<Telemetry>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        let cfg = Arc::clone(&config.borrow_and_update());
        let Some(every) = cfg.disk.as_ref().and_then(|d| d.check_every) else {
            tokio::select! {
                () = stop.cancelled() => return,
                r = config.changed() => if r.is_err() { return } else { continue },
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match measure(&connector, &cfg).await {
            Ok((used, high)) => {
                telemetry.metrics.set_disk(used, high);
                if used >= high && observe::needs_disk(&cfg) {
                    tracing::info!(
                        used_ratio = used,
                        high_ratio = high,
                        "disk over high: running a pass early"
                    );
                    wake.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "disk check failed"),
        }
    }
}

/// Used and `high` ratios of the disk now.
async fn measure<C: Connector>(connector: &C, cfg: &Config) -> anyhow::Result<(f64, f64)> {
    let engine = connector.connect(&cfg.docker).await?;
    let info = engine.info().await?;
    let api = cfg
        .disk
        .as_ref()
        .is_some_and(|d| matches!(d.measure, Measure::Api { .. }));
    let inventory = if api {
        Inventory {
            images: engine.list_images().await?,
            containers: Vec::new(),
            build_cache: None,
        }
    } else {
        Inventory::default()
    };
    let usage = observe::measure_disk(cfg, info.root_dir, &inventory)?;
    let high = cfg
        .disk
        .as_ref()
        .map_or(1.0, |d| f64::from(d.space.high) / 100.0);
    Ok((usage.used_ratio(), high))
}
