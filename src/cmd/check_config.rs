//! `stagesweep check-config`: validate and summarise, then, when the engine can be asked,
//! say which filesystem the disk watermarks measure (and why) and what the host needs.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::cli::ConfigArg;
use super::{CmdError, load_config, stdout};
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::pass::disk::{DiskError, locate, needs_disk};
use crate::pass::{PassError, PassOptions, run_pass};

/// How long check-config waits for the engine before it leaves the host check out.
const ENGINE_WAIT: Duration = Duration::from_secs(5);

/// What the engine told about the host.
#[derive(Default)]
struct HostCheck {
    /// `disk: the watermarks measure …`, or why the disk cannot be measured.
    disk: Option<Result<String, DiskError>>,
    /// The "say what the host needs" line.
    hint: Option<String>,
}

/// Print `ok` and one line per policy and rule, or fail with every problem; then, when the
/// engine answers, the filesystem the disk watermarks measure and the "say what the host
/// needs" line if there is one. A disk that `disk_pressure` policies need and that must not
/// be measured (a remote engine without `disk.path`, containerd's root not found) fails
/// the check as it fails `prune` (exit 2).
pub async fn run(args: &ConfigArg) -> Result<(), CmdError> {
    let cfg = load_config(args)?;
    let host = host_check(&cfg).await;
    if let Some(Err(e)) = &host.disk
        && needs_disk(&cfg)
    {
        stdout::lines(&config::summary_lines(&cfg))?;
        return Err(PassError::Disk(e.clone()).into());
    }
    let mut lines = vec!["ok".to_owned()];
    lines.extend(config::summary_lines(&cfg));
    match &host.disk {
        Some(Ok(line)) => lines.push(line.clone()),
        Some(Err(e)) => lines.push(format!("disk: cannot be measured on this engine: {e}")),
        None => {}
    }
    lines.extend(host.hint);
    stdout::lines(&lines)
}

/// Ask the configured engine, bounded by [`ENGINE_WAIT`] per call: where the disk is
/// measured, and (unless that is refused) a dry-run pass for its host hint. An engine that
/// does not answer is no configuration problem: nothing is said.
async fn host_check(cfg: &Config) -> HostCheck {
    let mut bounded = cfg.clone();
    bounded.docker.timeout = bounded.docker.timeout.min(ENGINE_WAIT);
    let Some(engine) = super::connect(&bounded)
        .await
        .inspect_err(|e| debug!(error = %e, "no host check: the engine does not answer"))
        .ok()
    else {
        return HostCheck::default();
    };
    let mut check = HostCheck::default();
    if let Some(disk) = &cfg.disk {
        match engine.info().await {
            Ok(info) => {
                let located = locate(disk, &info);
                check.disk = Some(
                    located.map(|g| format!("disk: the watermarks measure {}", g.describe(&info))),
                );
            }
            Err(e) => debug!(error = %e, "no disk check: the engine does not answer /info"),
        }
    }
    if matches!(check.disk, Some(Err(_))) && needs_disk(cfg) {
        return check; // the pass would only say the same, louder
    }
    let opts = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    check.hint = run_pass(&engine, cfg, Utc::now(), &opts, &CancellationToken::new())
        .await
        .inspect_err(|e| debug!(error = %e, "no host check: the inventory could not be read"))
        .ok()
        .and_then(|r| r.host_hint);
    check
}
