//! The agent's disk checker (`disk.check_every`): between passes it measures the disk as a
//! pass would ([`crate::pass::disk::check`]), exports the figures and the forecast
//! ([`super::forecast`]: fill rate, time until `high`), and wakes the loop for an early pass
//! when the disk is at or over `high` — or, with `disk.forecast.preempt`, when the forecast
//! says it gets there before the next check is done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backend::Connector;
use super::forecast::Forecaster;
use super::telemetry::Telemetry;
use super::trigger::Forecasts;
use crate::config::Config;
use crate::inventory::DiskUsage;
use crate::pass::disk::{check, needs_disk};

pub(super) async fn check_disk<C: Connector>(
    connector: C,
    mut config: watch::Receiver<Arc<Config>>,
    telemetry: Arc<Telemetry>,
    wake: Arc<Notify>,
    forecasts: Arc<Forecasts>,
    stop: CancellationToken,
) {
    let started = Instant::now();
    let mut forecaster = Forecaster::default();
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
            Ok(usage) => {
                let at = started.elapsed();
                // A pass started now must end before `high`: the next check, and twice the
                // last pass's duration (its run, and room for error in the estimate), that
                // at most `every` (a pass that waited for builds is no measure).
                let took = forecasts.last_pass().min(every);
                let horizon = every.saturating_add(took.saturating_mul(2));
                if act(
                    &cfg,
                    &usage,
                    &mut forecaster,
                    (at, horizon),
                    &telemetry,
                    &forecasts,
                ) {
                    wake.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "disk check failed"),
        }
    }
}

/// Export the measurement taken `at` and the forecast; leave in `forecasts` the forecast
/// pass due, if any (`high` within `horizon`). True: wake the loop for an early pass.
fn act(
    cfg: &Config,
    usage: &DiskUsage,
    forecaster: &mut Forecaster,
    (at, horizon): (Duration, Duration),
    telemetry: &Telemetry,
    forecasts: &Forecasts,
) -> bool {
    let Some(disk) = cfg.disk.as_ref() else {
        return false;
    };
    let used = usage.used_ratio();
    let high = f64::from(disk.space.high) / 100.0;
    telemetry.metrics.set_disk(used, high);
    let forecast = forecaster.observe(at, usage, disk);
    telemetry.metrics.set_forecast(&forecast);
    if used >= high {
        forecasts.set(None);
        if needs_disk(cfg) {
            tracing::info!(
                used_ratio = used,
                high_ratio = high,
                "disk over high: running a pass early"
            );
        }
        return needs_disk(cfg);
    }
    let due = (disk.forecast.preempt && needs_disk(cfg))
        .then(|| forecast.due(horizon, disk))
        .flatten();
    if let Some(due) = due {
        tracing::info!(
            reason = %due.reason(),
            eta_secs = due.eta.as_secs_f64(),
            next_check_done_in_secs = horizon.as_secs_f64(),
            "disk reaches high before the next check: running the pressure pass early"
        );
    }
    forecasts.set(due);
    due.is_some()
}

/// The disk measured now.
async fn measure<C: Connector>(connector: &C, cfg: &Config) -> anyhow::Result<DiskUsage> {
    let engine = connector.connect(&cfg.docker).await?;
    check(&engine, cfg).await
}
