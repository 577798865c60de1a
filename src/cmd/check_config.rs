//! `stagesweep check-config`: validate and summarise, then say what the host needs when the
//! engine can be asked.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::cli::ConfigArg;
use super::{CmdError, load_config};
use crate::config::{self, Config};
use crate::pass::{PassOptions, run_pass};

/// How long check-config waits for the engine before it leaves the host check out.
const ENGINE_WAIT: Duration = Duration::from_secs(5);

/// Print `ok` and one line per policy and rule, or fail with every problem; then, when the
/// engine answers, the "say what the host needs" line if there is one.
pub async fn run(args: &ConfigArg) -> Result<(), CmdError> {
    let cfg = load_config(args)?;
    println!("ok");
    for line in config::summary_lines(&cfg) {
        println!("{line}");
    }
    if let Some(line) = host_check(&cfg).await {
        println!("{line}");
    }
    Ok(())
}

/// A dry-run pass against the configured engine, bounded by [`ENGINE_WAIT`] per call; its
/// host hint. An engine that does not answer is no configuration problem: nothing is said.
async fn host_check(cfg: &Config) -> Option<String> {
    let mut bounded = cfg.clone();
    bounded.docker.timeout = bounded.docker.timeout.min(ENGINE_WAIT);
    let engine = super::connect(&bounded)
        .await
        .inspect_err(|e| debug!(error = %e, "no host check: the engine does not answer"))
        .ok()?;
    let opts = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    let report = run_pass(&engine, cfg, Utc::now(), &opts, &CancellationToken::new())
        .await
        .inspect_err(|e| debug!(error = %e, "no host check: the inventory could not be read"))
        .ok()?;
    report.host_hint
}
