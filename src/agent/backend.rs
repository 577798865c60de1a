//! What one scheduled pass does against the world: (re)connect to the engine, take the
//! host lock, run [`crate::pass::run_pass_with`] with the agent's history. The loop only sees
//! the [`Backend`] trait, so its tests can fake passes of any length and any failure.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::clock::Clock;
use crate::builds::Coordination;
use crate::config::{Config, DockerConfig};
use crate::engine::{Engine, EngineError};
use crate::execute::Summary;
use crate::history::worker::Shared;
use crate::locks::HostLock;
use crate::pass::{HistoryUse, PassError, PassOptions, run_pass_with};

/// How often a pass waiting for the host lock (held by a manual `prune`) retries.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// The agent's view of the engine.
pub trait Backend: Send + Sync {
    /// Connect if needed and check the engine answers. Returns where the engine is.
    fn probe(&self, config: &Config) -> impl Future<Output = Result<String, EngineError>> + Send;

    /// Run one pass under the host lock. `stop` asks it to start no new deletions.
    ///
    /// The future is not required to be `Send`: rustc cannot prove it for `run_pass`
    /// (higher-ranked closure lifetimes in `execute`), and the agent runs on a
    /// current-thread runtime anyway.
    fn pass(
        &self,
        config: &Config,
        clock: &dyn Clock,
        stop: &CancellationToken,
    ) -> impl Future<Output = Result<Summary, PassError>>;
}

/// Makes an engine from the `docker:` section (the real one is `DockerEngine::connect`).
pub trait Connector: Send + Sync {
    type Engine: Engine + 'static;
    fn connect(
        &self,
        docker: &DockerConfig,
    ) -> impl Future<Output = Result<Self::Engine, EngineError>> + Send;
}

/// The real backend: an engine made by a [`Connector`], re-made when it could not be built,
/// when a probe finds it gone, or when a reload changed the `docker:` section.
pub struct EngineBackend<C: Connector> {
    connector: C,
    engine: tokio::sync::Mutex<Option<(DockerConfig, Arc<C::Engine>)>>,
    history: Option<Shared>,
    /// Whether the history follows the engine's events, and since when it does or does not
    /// (the events task says).
    caught_up: Option<tokio::sync::watch::Receiver<CatchUp>>,
    /// Where the per-group gauges go after each pass (`None` in tests that do not ask).
    telemetry: Option<Arc<super::telemetry::Telemetry>>,
}

/// Whether the history follows the engine's events (`caught_up`), since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub caught_up: bool,
    pub since: tokio::time::Instant,
}

impl<C: Connector> EngineBackend<C> {
    pub fn new(connector: C) -> Self {
        Self {
            connector,
            engine: tokio::sync::Mutex::new(None),
            history: None,
            caught_up: None,
            telemetry: None,
        }
    }

    /// Set the per-group gauges of `telemetry` after each pass, from the pass's own data.
    #[must_use]
    pub fn with_group_gauges(mut self, telemetry: Arc<super::telemetry::Telemetry>) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// Passes read and update this history, once it follows the engine's events
    /// (`caught_up`; each pass waits for it up to `history.catch_up`, then counts a gap).
    #[must_use]
    pub fn with_history(
        mut self,
        history: Option<Shared>,
        caught_up: Option<tokio::sync::watch::Receiver<CatchUp>>,
    ) -> Self {
        self.history = history;
        self.caught_up = caught_up;
        self
    }

    /// Wait until the history follows the engine's events, at most until `limit` after it
    /// stopped following them (so only the first passes of an outage wait). When it does not
    /// by then (the events task cannot connect, or keeps failing), a gap is counted up to
    /// this pass's reconcile, so `gap_policy` applies before any `unused_for` or LRU decision
    /// is made on records that may have missed uses.
    async fn history_caught_up(&self, limit: Duration) {
        let (Some(history), Some(caught_up)) = (&self.history, &self.caught_up) else {
            return;
        };
        let mut caught_up = caught_up.clone();
        let state = *caught_up.borrow();
        if state.caught_up {
            return;
        }
        let waited =
            tokio::time::timeout_at(state.since + limit, caught_up.wait_for(|s| s.caught_up)).await;
        if waited.is_ok_and(|r| r.is_ok()) {
            return;
        }
        tracing::warn!(
            behind_secs = state.since.elapsed().as_secs(),
            "the history does not follow the engine's events: counted as a gap (history.gap_policy applies)"
        );
        crate::history::worker::lock(history).pending_gap = Some(DateTime::<Utc>::MAX_UTC);
    }

    async fn engine(&self, docker: &DockerConfig) -> Result<Arc<C::Engine>, EngineError> {
        let mut slot = self.engine.lock().await;
        if let Some((made_for, engine)) = slot.as_ref()
            && made_for == docker
        {
            return Ok(Arc::clone(engine));
        }
        let engine = Arc::new(self.connector.connect(docker).await?);
        *slot = Some((docker.clone(), Arc::clone(&engine)));
        Ok(engine)
    }

    async fn forget(&self) {
        *self.engine.lock().await = None;
    }
}

impl<C: Connector> Backend for EngineBackend<C> {
    async fn probe(&self, config: &Config) -> Result<String, EngineError> {
        let engine = self.engine(&config.docker).await?;
        match engine.ping().await {
            Ok(()) => Ok(engine.describe()),
            Err(e) => {
                if e.is_gone() {
                    self.forget().await;
                }
                Err(e)
            }
        }
    }

    async fn pass(
        &self,
        config: &Config,
        clock: &dyn Clock,
        stop: &CancellationToken,
    ) -> Result<Summary, PassError> {
        let engine = self.engine(&config.docker).await?;
        self.history_caught_up(config.history.catch_up).await;
        let lock_file = &config.agent.lock_file;
        let _lock = HostLock::acquire_polling(lock_file, LOCK_POLL, stop, |busy| {
            tracing::info!(%busy, "waiting for the host lock");
        })
        .await?;
        let opts = PassOptions {
            builds: Some(Coordination {
                config: config.builds.clone(),
                wait: true,
            }),
            ..PassOptions::default()
        };
        let history = self
            .history
            .as_deref()
            .map_or(HistoryUse::Off, HistoryUse::Shared);
        let report =
            run_pass_with(engine.as_ref(), config, clock.now(), &opts, stop, history).await;
        if let (Ok(report), Some(t)) = (&report, &self.telemetry) {
            t.metrics.groups.update(report, &config.metrics);
        }
        match report {
            Ok(report) => match report.engine_lost {
                None => Ok(report.summary),
                Some(error) => {
                    self.forget().await;
                    Err(PassError::EngineLost {
                        error,
                        summary: Box::new(report.summary),
                    })
                }
            },
            Err(e) => {
                if e.is_unreachable() {
                    self.forget().await;
                }
                Err(e)
            }
        }
    }
}
