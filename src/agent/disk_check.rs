//! The agent's disk checker (`disk.check_every`): between passes it measures the disk as a
//! pass would ([`crate::pass::disk::check`]), exports the figures, and wakes the loop for an
//! early pass when the disk is at or over `high`.

use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::backend::Connector;
use super::telemetry::Telemetry;
use crate::config::Config;
use crate::pass::disk::{check, needs_disk};

pub(super) async fn check_disk<C: Connector>(
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
                if used >= high && needs_disk(&cfg) {
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
    check(&engine, cfg).await
}
