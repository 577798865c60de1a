//! The agent's tasks beside the schedule, started and stopped together: the history tasks
//! ([`super::history_task`]) and the disk checker ([`super::disk_check`]). The history is
//! opened here, for the agent's whole life (in memory when its file cannot be written).

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::backend::{CatchUp, Connector};
use super::telemetry::Telemetry;
use super::trigger::Forecasts;
use super::{disk_check, history_task};
use crate::config::{Config, HistoryConfig};
use crate::history::store::{self, Opener};
use crate::history::worker::Shared;

/// The running tasks.
pub struct Observers {
    history: Option<(Shared, HistoryConfig)>,
    /// True while the events worker follows the engine (replayed and reconciled since its
    /// last connection).
    caught_up: watch::Receiver<CatchUp>,
    tasks: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    stop: CancellationToken,
}

/// Start the tasks the configuration asks for. `wake` is notified when the disk needs an
/// early pass (a forecast pass in `forecasts` first, when that is why). A history file that
/// cannot be read stops the agent before anything runs.
pub fn start<C: Connector + Clone + 'static>(
    config: &watch::Receiver<Arc<Config>>,
    connector: &C,
    telemetry: &Arc<Telemetry>,
    (wake, forecasts): (&Arc<Notify>, &Arc<Forecasts>),
) -> Result<Observers, store::Unreadable> {
    let stop = CancellationToken::new();
    let current = Arc::clone(&config.borrow());
    let mut tasks = Vec::new();
    let mut writer = None;
    // Not following yet: the first passes wait for the first session, up to catch_up.
    let (caught_up_tx, caught_up) = watch::channel(CatchUp {
        caught_up: false,
        since: tokio::time::Instant::now(),
    });
    let history = store::open(&current.history, Opener::Agent)?.map(|h| {
        let shared: Shared = Arc::new(Mutex::new(h));
        tasks.push(tokio::spawn(history_task::follow_events(
            connector.clone(),
            config.clone(),
            Arc::clone(&shared),
            caught_up_tx,
            Arc::clone(telemetry),
            stop.clone(),
        )));
        writer = Some(tokio::spawn(history_task::write_history(
            Arc::clone(&shared),
            current.history.clone(),
            stop.clone(),
        )));
        (shared, current.history.clone())
    });
    tasks.push(tokio::spawn(disk_check::check_disk(
        connector.clone(),
        config.clone(),
        Arc::clone(telemetry),
        Arc::clone(wake),
        Arc::clone(forecasts),
        stop.clone(),
    )));
    Ok(Observers {
        history,
        caught_up,
        tasks,
        writer,
        stop,
    })
}

impl Observers {
    /// The shared history, when it is kept.
    #[must_use]
    pub fn history(&self) -> Option<Shared> {
        self.history.as_ref().map(|(h, _)| Arc::clone(h))
    }

    /// Whether the history follows the engine's events now, for passes to wait on; `None`
    /// without a history.
    #[must_use]
    pub fn caught_up(&self) -> Option<watch::Receiver<CatchUp>> {
        self.history.as_ref().map(|_| self.caught_up.clone())
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
