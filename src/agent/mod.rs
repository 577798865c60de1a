//! The long-running agent (`stagesweep agent`): passes on a schedule, the host lock,
//! backoff while docker is away, signals (TERM/INT stop, HUP reload), metrics and health
//! over HTTP, and systemd notifications.
//!
//! Owns the loop and its plumbing only: what a pass deletes is decided by `plan` and done
//! by `pass`, exactly as for `stagesweep prune`. Does not initialise tracing (main.rs does).

pub mod backend;
pub mod clock;
mod disk_check;
pub mod early_passes;
pub mod exposition;
pub mod forecast;
pub mod group_gauges;
mod history_task;
pub mod http;
mod metric_labels;
pub mod metrics;
pub mod notify;
pub mod process_metrics;
pub mod reload;
pub mod runner;
mod tasks;
pub mod telemetry;
pub mod ticks;
pub mod trigger;
mod wiring;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

pub use crate::pass::PassError;
pub use backend::{Backend, CatchUp, Connector, EngineBackend};
pub use clock::{Clock, SystemClock, TokioClock};
pub use history_task::WRITE_EVERY;
pub use metric_labels::{PassResult, SkipReason};
pub use reload::{LoadFn, Reloader};
pub use runner::{Agent, Stopped};
pub use telemetry::Telemetry;
pub use ticks::{Ticker, TickerFactory};
pub use wiring::{DockerConnector, schedule_tickers};

use crate::config::Config;

/// Run the agent with the Docker engine and the configured schedule until SIGTERM/SIGINT.
/// `config_path` is re-read on SIGHUP.
pub async fn main(config_path: PathBuf, config: Config) -> anyhow::Result<()> {
    let load: LoadFn = Box::new(crate::config::load_file);
    // Boxed: the loop's future holds a whole pass (~23 KB), too big for the caller's stack frame.
    Box::pin(run_with(
        config_path,
        config,
        DockerConnector,
        schedule_tickers(),
        load,
    ))
    .await
}

/// [`main`] with its engine, schedule and config loader given by the caller.
pub async fn run_with<C: Connector + Clone + 'static>(
    config_path: PathBuf,
    config: Config,
    connector: C,
    tickers: TickerFactory,
    load: LoadFn,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;

    let telemetry = Arc::new(Telemetry::new());
    let stop_http = CancellationToken::new();
    if config.metrics.enabled {
        let addr = config.metrics.listen;
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for /metrics, /healthz and /livez (set metrics.listen: to a free address, or metrics.enabled: false)")
        })?;
        tracing::info!(listen = %addr, "serving /metrics, /healthz and /livez");
        tokio::spawn(http::serve(
            listener,
            Arc::clone(&telemetry),
            stop_http.clone(),
        ));
    }

    let (reloader, config_rx) = Reloader::new(config_path, config, load, Arc::clone(&telemetry));
    let reloads = tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading the configuration");
            // Errors are logged by `reload`; the old configuration stays.
            let _ = reloader.reload();
        }
    });

    // READY at once, even when docker is not up yet: STATUS says so, and systemd does not
    // kill an agent that is healthy but waiting for docker.
    notify::ready(&telemetry.status_line());
    let watchdog = notify::watchdog_period().map(|period| tokio::spawn(notify::watchdog(period)));

    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received: shutting down"),
        }
        notify::stopping();
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let forecasts = Arc::new(trigger::Forecasts::default());
    let observers = tasks::start(&config_rx, &connector, &telemetry, (&wake, &forecasts))?;
    let backend = EngineBackend::new(connector)
        .with_history(observers.history(), observers.caught_up())
        .with_group_gauges(Arc::clone(&telemetry));
    let agent = Agent::new(
        backend,
        SystemClock,
        config_rx,
        tickers,
        Arc::clone(&telemetry),
    )
    .with_wake(wake)
    .with_forecasts(forecasts);
    let stopped = agent.run(shutdown).await;
    observers.shutdown().await;

    stop_http.cancel();
    reloads.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!(?stopped, "agent stopped");
    Ok(())
}
